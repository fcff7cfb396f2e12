package magetargets

import (
	"context"
	"errors"
	"fmt"
	"github.com/magefab/magefab/release/notify"
	"maps"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// Deployment types of the built-in environments. An environment whose
// DeploymentType is SOLO runs on this machine, without SSH.
const (
	deploySolo       = "SOLO"
	deployDev        = "DEV"
	deployStaging    = "STAGING"
	deployProduction = "PRODUCTION"
)

// TestRunner runs a project's tests locally, for the environment about to
// be deployed to. A non-nil error stops the deploy.
type TestRunner func(ctx context.Context, env Environment) error

// DeployTask is a deploy step of the project's own, run on each host in the
// new release dir (see Config.ExtraDeployTasks).
type DeployTask func(ctx context.Context, step DeployStep) error

// DeployStep is what a DeployTask works on.
type DeployStep struct {
	Host        sshx.Host      // the host, to run commands on
	Dir         string         // the new release dir on the host, absolute
	Environment Environment    // the environment deployed to
	Release     release.Target // what is deployed
}

// SetupTask is a step of pip:setup of the project's own, run in RootDir.
type SetupTask func(ctx context.Context, root string) error

// CeleryData is what the Celeryd template is rendered over.
type CeleryData struct {
	Config
	Environment Environment
	Current     string // the live release dir on the host: <Path>/<ReleasesRoot>/<CurrentLink>
	Beat        bool   // run celerybeat: true on the first host only
}

// Config is the configuration every target reads. A project sets it once,
// with Configure, in the init function of its magefile. A zero field means
// the default given in its comment.
type Config struct {
	// Unit is the application's short name, used in paths and in the
	// name of its init script. Required: letters, digits, '_', '-', '.'.
	Unit string

	// Path is the deploy root on the servers. A relative path is relative
	// to the login user's home. It holds letters, digits and '/', '.', '_',
	// '-', '+', '@', ',', ':' only, so that templates such as
	// RestartCommand can use it bare. Empty means /var/webapps/<Unit>.
	Path string

	// SCM is the git URL the servers clone from. Required by the deploy
	// targets; empty is an error there. git's ext:: and fd:: transports,
	// which run commands, are refused.
	SCM string

	// SCMWebURL is the HTTP view of the repository, for compare links in
	// notifications. Empty means no links.
	SCMWebURL string

	// Remote is the local git remote that mirrors SCM. Empty means origin.
	Remote string

	// ReleasesRoot is the directory under Path that holds the release
	// directories, the CurrentLink and the deploy lock. Empty means
	// releases. It, ReleaseDirs, CurrentLink and Virtualenv are plain
	// names of letters, digits, '.', '_' and '-'.
	ReleasesRoot string

	// ReleaseDirs are the two directories under ReleasesRoot that deploys
	// alternate between. Empty means [a b].
	ReleaseDirs []string

	// CurrentLink is the symlink under ReleasesRoot to the live release
	// directory. Empty means current.
	CurrentLink string

	// Virtualenv is the virtualenv directory inside each release
	// directory. Empty means env.
	Virtualenv string

	// Python is the interpreter that creates virtualenvs on the servers.
	// Empty means python3.
	Python string

	// VersionPattern is the regular expression a release tag matches.
	// Empty means release.DefaultVersionPattern, ^v\d+(\.\d+)+?$.
	VersionPattern string

	// SignTags creates release tags with git tag -s (signed) instead of
	// git tag -a (annotated). False means annotated.
	SignTags bool

	// DeployUser owns the deployed files and the crontab. Empty means
	// deploy.
	DeployUser string

	// DeployGroup is the group of the deployed files; the release
	// directories are group-writable. Empty means deploy.
	DeployGroup string

	// PipRequirements are requirement files, relative to the repository
	// root, installed in every environment. Nil means none.
	PipRequirements []string

	// PipRequirementsDev are requirement files also installed in DEV and
	// SOLO environments (development and localhost). Nil means none.
	PipRequirementsDev []string

	// PipRequirementsProduction are requirement files also installed in
	// every environment that is not SOLO. Nil means none.
	PipRequirementsProduction []string

	// PipInstallCommand installs requirements into a virtualenv, e.g.
	// "pip install --no-index --find-links /srv/wheels". Empty means
	// "pip install".
	PipInstallCommand string

	// RestartCommand restarts the application on a server: a text/template
	// over the Config. It always runs the same way (with sudo unless
	// NoSudo), so its pid and log files keep one owner. Empty means
	// "/etc/init.d/{{.Unit}} restart".
	RestartCommand string

	// NoSudo runs the privileged steps (creating Path, restarting)
	// without sudo -n. False means sudo is used.
	NoSudo bool

	// Settings is the settings file, relative to the release directory,
	// that holds MAINTENANCE_MODE. Empty means settings.py.
	Settings string

	// PrivateRequirements are files, relative to RootDir, listing private
	// packages that are not on PyPI: "name==version" (an archive in S3) or
	// "name==git-url==ref" (packed with git archive, submodules included).
	// They are fetched here and installed into every release's virtualenv
	// when its requirements are installed. Nil means none.
	PrivateRequirements []string

	// PackageInstallScripts are scripts in the repository run, in the
	// release dir, with the virtualenv's path as first argument, after the
	// requirements are installed. Nil means none.
	PackageInstallScripts []string

	// S3 says where the archives of private packages live. Zero means no
	// S3 packages.
	S3 S3

	// Migrate runs Django's manage.py migrate once per deploy, on the first
	// host, from the new release before any host switches. False means no
	// migrations.
	Migrate bool

	// Fixtures are loaded with manage.py loaddata once per deploy, after
	// the migrations, in every environment (Environment.Fixtures adds
	// per-environment ones). Nil means none.
	Fixtures []string

	// Celeryd is the path, relative to RootDir, of a celeryd init script
	// template (text/template over CeleryData). It is rendered per host,
	// uploaded to /etc/init.d/celeryd-<Unit>_<DeploymentType> and
	// restarted after every switch; Beat is true only on the first host.
	// Empty means no celery.
	Celeryd string

	// ExtraDeployTasks run on each host inside the new release dir after
	// it is prepared and before any host switches. Nil means none.
	ExtraDeployTasks []DeployTask

	// ExtraSetupTasks run at the end of pip:setup, in RootDir. Nil means
	// none.
	ExtraSetupTasks []SetupTask

	// VersionURL is a URL template (text/template over VersionData, e.g.
	// "https://{{.Subdomain}}example.com/version") answering the commit the
	// app serves. Before a deploy it gives the release live for the
	// compare link; after the restart it is polled until it serves the new
	// commit on every host, and a fleet that does not is rolled back unless
	// MAGEFAB_NO_AUTO_ROLLBACK=1. Empty means no check.
	VersionURL string

	// Notifiers are told of every deploy and rollback, once, after it
	// succeeded: notify.Campfire, notify.Airbrake, notify.Slack,
	// notify.Webhook, or a type of the project's. A failure is a warning
	// naming the service; secrets are never printed. Nil means none.
	Notifiers []notify.Notifier

	// TestRunner runs the tests, before every deploy and in test:run:
	// Django, Tornado, Nose, Pytest, or a func of the project's. Nil means
	// no tests.
	TestRunner TestRunner

	// LintCommand runs the linter in lint:python, from RootDir, as plain
	// words (no shell); PYTHONPATH gets lib/, apps/ and every vendor/*
	// directory. Empty means "pylint --rcfile=.pylintrc <RootDir>".
	LintCommand string

	// DefaultEnvironment is the environment used when no env:* target ran
	// and MAGEFAB_ENV is unset. Empty means none: not choosing is then an
	// error.
	DefaultEnvironment string

	// Parallel is how many hosts are worked on at once; MAGEFAB_PARALLEL
	// overrides it. Zero means 16.
	Parallel int

	// Timeouts bound the phases of a deploy. Zero fields mean their
	// defaults: Connect 10s, Prepare 15m, Switch 2m.
	Timeouts Timeouts

	// SSH says how hosts are reached. Zero fields mean their defaults.
	SSH SSH

	// AWS says where the load balancer API is, for Environment.LoadBalancer
	// and the elb:* targets. Credentials come from the AWS SDK's default
	// chain (environment, shared config files, SSO, instance roles). Zero
	// fields mean their defaults.
	AWS AWS

	// RootDir is the project root, where the magefile is. Empty means the
	// working directory when a target runs.
	RootDir string

	// Environments are merged over the built-in localhost, development,
	// staging and production: a given field that is not zero replaces the
	// built-in one, a zero field keeps it. Other names add environments,
	// selected with MAGEFAB_ENV or DefaultEnvironment. Nil means the
	// built-in four, none of them with hosts.
	Environments map[string]Environment
}

// S3 is where private package archives live: s3://Bucket/<KeyTemplate>.
// Credentials come from the AWS SDK's standard chain.
type S3 struct {
	Bucket      string // bucket name
	Region      string // "" means the SDK's default
	Endpoint    string // for S3-compatible stores; "" means AWS
	KeyTemplate string // text/template over the package (Name, Version); "" means {{.Name}}.tar.gz
}

// Timeouts bound the phases of a deploy on each host.
type Timeouts struct {
	// Connect bounds the TCP dial and the SSH handshake together: a host
	// that accepts TCP but never speaks fails after it. Zero means 10s.
	Connect time.Duration

	// Prepare bounds the prepare phase on one host (fetch, virtualenv,
	// requirements, migrations). Zero means 15m.
	Prepare time.Duration

	// Switch bounds the switch and the restart on one host. Zero means 2m.
	Switch time.Duration

	// Verify bounds how long every host has to serve the new commit at
	// VersionURL after the restart. Zero means 30s.
	Verify time.Duration
}

// SSH says how hosts are reached and checked.
type SSH struct {
	// ConfigFile is the OpenSSH client config file whose Host aliases are
	// honoured; "none" reads none. Empty means ~/.ssh/config.
	ConfigFile string

	// KnownHostsFile is where host keys are checked. Empty means
	// ~/.ssh/known_hosts.
	KnownHostsFile string

	// IdentityFiles are private keys tried after the SSH agent's keys.
	// Nil means the client config file's, else ~/.ssh/id_ed25519,
	// id_ecdsa and id_rsa.
	IdentityFiles []string

	// User is the login user for hosts whose spec and client config file
	// name none. Empty means the local user.
	User string

	// Port is the port for hosts whose spec and client config file name
	// none. Zero means 22.
	Port int

	// ConnectTimeout bounds the TCP dial and the SSH handshake. Zero
	// means Timeouts.Connect.
	ConnectTimeout time.Duration

	// StrictHostKeyChecking is "yes" (refuse unknown hosts) or
	// "accept-new" (record the key of a host not yet known; a changed key
	// is still refused). Empty means yes.
	StrictHostKeyChecking string
}

// AWS says where the load balancer API is.
type AWS struct {
	// Region is the region of the load balancers, e.g. us-east-1. Empty
	// means the AWS SDK's default chain: AWS_REGION, AWS_DEFAULT_REGION,
	// the shared config file.
	Region string

	// Endpoint is the base URL of an AWS-compatible API that serves both
	// the ELB and the EC2 calls, e.g. http://127.0.0.1:4566. Empty means
	// AWS itself.
	Endpoint string
}

// Environment is where a deploy goes: a set of hosts and the rules for
// what may be deployed there.
type Environment struct {
	// Name is the environment's name in output and notifications. Empty
	// means its key in Config.Environments.
	Name string

	// DeploymentType is exported to the application as DEPLOYMENT_TYPE
	// and names its celeryd script. SOLO runs on this machine without SSH
	// and installs PipRequirementsDev; DEV installs PipRequirementsDev;
	// every type but SOLO installs PipRequirementsProduction. Empty means
	// the key upper-cased.
	DeploymentType string

	// Hosts are the servers, as host specs or aliases of the SSH client
	// config file; MAGEFAB_HOSTS overrides them. Nil means none: the
	// environment then needs a LoadBalancer, unless it is SOLO.
	Hosts []string

	// LoadBalancer is an ELB name whose running instances become the
	// Hosts when Hosts is empty. Empty means none.
	LoadBalancer string

	// AllowNoTag lets commits that are not tagged releases be deployed.
	// False means every deploy is a tagged release: deploy:head and
	// deploy:commit tag what they deploy.
	AllowNoTag bool

	// Branch is the branch that deploys of HEAD must come from. Empty
	// means any branch.
	Branch string

	// DefaultRevision is what deploy:head deploys in an environment that
	// allows untagged deploys, e.g. origin/development. Empty means HEAD.
	DefaultRevision string

	// PathSuffix is appended to Config.Path on this environment's hosts,
	// e.g. "-staging". Empty means none.
	PathSuffix string

	// Requirements are requirement files installed in this environment
	// only, after the Config's. Nil means none.
	Requirements []string

	// Crontab is a crontab file, relative to the repository root,
	// installed for DeployUser. Empty means none.
	Crontab string

	// Fixtures are Django fixtures loaded with manage.py loaddata on
	// deploy, in this environment only. Nil means none.
	Fixtures []string
}

// Names of the built-in environments.
const (
	envLocalhost   = "localhost"
	envDevelopment = "development"
	envStaging     = "staging"
	envProduction  = "production"
)

// builtinEnvironments returns buedafab's four environments. remote is the
// configured Remote, which production's DefaultRevision follows.
func builtinEnvironments(remote string) map[string]Environment {
	return map[string]Environment{
		envLocalhost: {
			Name:           envLocalhost,
			DeploymentType: deploySolo,
			AllowNoTag:     true,
		},
		envDevelopment: {
			Name:           envDevelopment,
			DeploymentType: deployDev,
			AllowNoTag:     true,
		},
		envStaging: {
			Name:           envStaging,
			DeploymentType: deployStaging,
			AllowNoTag:     true,
			PathSuffix:     "-staging",
		},
		envProduction: {
			Name:            envProduction,
			DeploymentType:  deployProduction,
			Branch:          "master",
			DefaultRevision: remote + "/master",
		},
	}
}

// Defaults of the Config fields.
const (
	defaultPathRoot          = "/var/webapps"
	defaultReleasesRoot      = "releases"
	defaultCurrentLink       = "current"
	defaultVirtualenv        = "env"
	defaultPython            = "python3"
	defaultDeployUser        = "deploy"
	defaultDeployGroup       = "deploy"
	defaultPipInstallCommand = "pip install"
	defaultRestartCommand    = "/etc/init.d/{{.Unit}} restart"
	defaultSettings          = "settings.py"
	defaultParallel          = 16
	defaultConnectTimeout    = 10 * time.Second
	defaultPrepareTimeout    = 15 * time.Minute
	defaultSwitchTimeout     = 2 * time.Minute
	defaultSSHConfigFile     = "~/.ssh/config"
	defaultKnownHostsFile    = "~/.ssh/known_hosts"
	defaultSSHPort           = 22
)

var defaultReleaseDirs = []string{"a", "b"}

// state is the package's one piece of shared state: the configuration set
// by Configure, and the environment selected by an env:* target. Mage runs
// every target named on a command line in one process, so a target sees
// what the targets before it set.
var state struct {
	mu  sync.Mutex
	cfg *Config // nil until Configure is called
	env string  // the environment an env:* target selected, "" for none
}

// Configure sets the configuration that every target reads. Call it from
// the init function of the project's magefile. It copies c, fills every
// zero field with its default, and merges c.Environments over the built-in
// environments; a later call replaces the configuration. Configure does not
// validate: each target checks the configuration when it runs and names
// the fields that are wrong.
func Configure(c Config) {
	d := withDefaults(c)
	state.mu.Lock()
	defer state.mu.Unlock()
	state.cfg = &d
}

// withDefaults returns a copy of c, sharing no slice or map with it, with
// every zero field set to its default and the environments merged.
func withDefaults(c Config) Config {
	c = c.clone()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	if c.Path == "" && c.Unit != "" {
		c.Path = defaultPathRoot + "/" + c.Unit
	}
	def(&c.Remote, release.DefaultRemote)
	def(&c.ReleasesRoot, defaultReleasesRoot)
	if len(c.ReleaseDirs) == 0 {
		c.ReleaseDirs = slices.Clone(defaultReleaseDirs)
	}
	def(&c.CurrentLink, defaultCurrentLink)
	def(&c.Virtualenv, defaultVirtualenv)
	def(&c.Python, defaultPython)
	def(&c.VersionPattern, release.DefaultVersionPattern)
	def(&c.DeployUser, defaultDeployUser)
	def(&c.DeployGroup, defaultDeployGroup)
	def(&c.PipInstallCommand, defaultPipInstallCommand)
	def(&c.RestartCommand, defaultRestartCommand)
	def(&c.Settings, defaultSettings)
	if c.Parallel == 0 {
		c.Parallel = defaultParallel
	}
	if c.Timeouts.Connect == 0 {
		c.Timeouts.Connect = defaultConnectTimeout
	}
	if c.Timeouts.Prepare == 0 {
		c.Timeouts.Prepare = defaultPrepareTimeout
	}
	if c.Timeouts.Switch == 0 {
		c.Timeouts.Switch = defaultSwitchTimeout
	}
	if c.Timeouts.Verify == 0 {
		c.Timeouts.Verify = 30 * time.Second
	}
	def(&c.SSH.ConfigFile, defaultSSHConfigFile)
	def(&c.SSH.KnownHostsFile, defaultKnownHostsFile)
	if c.SSH.Port == 0 {
		c.SSH.Port = defaultSSHPort
	}
	def(&c.SSH.StrictHostKeyChecking, sshx.StrictYes)

	envs := builtinEnvironments(c.Remote)
	for name, given := range c.Environments {
		base, ok := envs[name]
		if !ok {
			base = Environment{Name: name, DeploymentType: strings.ToUpper(name)}
		}
		envs[name] = mergeEnvironment(base, given)
	}
	c.Environments = envs
	return c
}

// mergeEnvironment returns base with every non-zero field of over.
func mergeEnvironment(base, over Environment) Environment {
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	list := func(dst *[]string, v []string) {
		if len(v) > 0 {
			*dst = slices.Clone(v)
		}
	}
	str(&base.Name, over.Name)
	str(&base.DeploymentType, over.DeploymentType)
	list(&base.Hosts, over.Hosts)
	str(&base.LoadBalancer, over.LoadBalancer)
	base.AllowNoTag = base.AllowNoTag || over.AllowNoTag
	str(&base.Branch, over.Branch)
	str(&base.DefaultRevision, over.DefaultRevision)
	str(&base.PathSuffix, over.PathSuffix)
	list(&base.Requirements, over.Requirements)
	str(&base.Crontab, over.Crontab)
	list(&base.Fixtures, over.Fixtures)
	return base
}

// clone returns a copy of c that shares no slice or map with it.
func (c Config) clone() Config {
	c.ReleaseDirs = slices.Clone(c.ReleaseDirs)
	c.PipRequirements = slices.Clone(c.PipRequirements)
	c.PipRequirementsDev = slices.Clone(c.PipRequirementsDev)
	c.PipRequirementsProduction = slices.Clone(c.PipRequirementsProduction)
	c.SSH.IdentityFiles = slices.Clone(c.SSH.IdentityFiles)
	if c.Environments != nil {
		envs := make(map[string]Environment, len(c.Environments))
		for name, e := range c.Environments {
			envs[name] = e.clone()
		}
		c.Environments = envs
	}
	return c
}

func (e Environment) clone() Environment {
	e.Hosts = slices.Clone(e.Hosts)
	e.Requirements = slices.Clone(e.Requirements)
	e.Fixtures = slices.Clone(e.Fixtures)
	return e
}

// errNoConfig is what every target reports when the magefile never called
// Configure.
var errNoConfig = errors.New("magetargets: no configuration: call magetargets.Configure in your magefile's init()")

// currentConfig returns a copy of the configuration set by Configure, with
// RootDir set to the working directory when it was left empty. It does not
// validate; see Config.validate.
func currentConfig() (Config, error) {
	state.mu.Lock()
	cfg := state.cfg
	state.mu.Unlock()
	if cfg == nil {
		return Config{}, errNoConfig
	}
	c := cfg.clone()
	if c.RootDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Config{}, fmt.Errorf("magetargets: RootDir is empty and the working directory is unknown: %w", err)
		}
		c.RootDir = wd
	}
	return c, nil
}

// envNames returns the names of the configured environments, sorted.
func (c Config) envNames() []string {
	return slices.Sorted(maps.Keys(c.Environments))
}

// envPath is the deploy root on the hosts of e: Path plus e's PathSuffix.
func (c Config) envPath(e Environment) string {
	return c.Path + e.PathSuffix
}

// restartCommand renders RestartCommand over the Config.
func (c Config) restartCommand() (string, error) {
	cmd, err := c.renderRestart()
	if err != nil {
		return "", fmt.Errorf("magetargets: Config.RestartCommand %s: %w", shown(c.RestartCommand), err)
	}
	return cmd, nil
}

func (c Config) renderRestart() (string, error) {
	tmpl, err := template.New("RestartCommand").Option("missingkey=error").Parse(c.RestartCommand)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, c); err != nil {
		return "", err
	}
	cmd := strings.TrimSpace(b.String())
	if cmd == "" {
		return "", errors.New("renders to nothing")
	}
	if reason := badText(cmd); reason != "" {
		return "", fmt.Errorf("renders to %s, which %s", shown(cmd), reason)
	}
	return cmd, nil
}

// requirements lists the requirement files to install in e: PipRequirements,
// then PipRequirementsDev in DEV and SOLO environments, then
// PipRequirementsProduction in every environment but SOLO, then
// e.Requirements; each file once, where it first appears.
func (c Config) requirements(e Environment) []string {
	var files []string
	add := func(list []string) {
		for _, f := range list {
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
	}
	add(c.PipRequirements)
	if e.DeploymentType == deployDev || e.DeploymentType == deploySolo {
		add(c.PipRequirementsDev)
	}
	if e.DeploymentType != deploySolo {
		add(c.PipRequirementsProduction)
	}
	add(e.Requirements)
	return files
}

// isLocal reports whether e runs on this machine, without SSH.
func (e Environment) isLocal() bool { return e.DeploymentType == deploySolo }

// fieldError is one problem in the configuration, naming the field.
type fieldError struct {
	field string // e.g. "Unit", "Environments[\"staging\"].Hosts[1]"
	err   error
}

func (e *fieldError) Error() string {
	var ie *release.InputError
	if errors.As(e.err, &ie) {
		return fmt.Sprintf("Config.%s %s: %s", e.field, shown(ie.Value), ie.Reason)
	}
	return "Config." + e.field + ": " + e.err.Error()
}

func (e *fieldError) Unwrap() error { return e.err }

// problems collects the fieldErrors of a validation.
type problems []error

func (p *problems) add(field string, err error) {
	if err != nil {
		*p = append(*p, &fieldError{field: field, err: err})
	}
}

func (p *problems) addf(field, format string, args ...any) {
	p.add(field, fmt.Errorf(format, args...))
}

var (
	accountRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	commandRE      = regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`)
	envNameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	loadBalancerRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)
)

// validate checks the configuration as the targets need it; forDeploy adds
// the fields only deploys need (SCM). It returns every problem at once, one
// line each, each naming its field.
func (c Config) validate(forDeploy bool) error {
	var p problems
	if c.Unit == "" {
		p.addf("Unit", "is required: set it to the app's short name, e.g. Unit: \"five\"")
	} else {
		p.add("Unit", release.ValidateUnit(c.Unit))
	}
	c.validateRepo(&p, forDeploy)
	c.validateLayout(&p)
	c.validateHostSide(&p)
	c.AWS.validate(&p)
	if len(c.Environments) == 0 {
		p.addf("Environments", "is empty; call magetargets.Configure, which adds the built-in environments")
	}
	for _, name := range c.envNames() {
		c.Environments[name].validate(&p, name)
	}
	if c.DefaultEnvironment != "" {
		if _, ok := c.Environments[c.DefaultEnvironment]; !ok {
			p.addf("DefaultEnvironment", "%s is not an environment; use one of %s", shown(c.DefaultEnvironment), strings.Join(c.envNames(), ", "))
		}
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("magetargets: the configuration given to magetargets.Configure has %d problem(s):\n%w", len(p), errors.Join(p...))
}

// validateRepo checks the fields about the git repository.
func (c Config) validateRepo(p *problems, forDeploy bool) {
	switch {
	case c.SCM == "" && forDeploy:
		p.addf("SCM", "is required for deploys: set it to the git URL the servers clone, e.g. git@github.com:you/app.git")
	case c.SCM != "":
		if reason := badSCM(c.SCM); reason != "" {
			p.addf("SCM", "%s %s; give the git URL the servers clone, e.g. git@github.com:you/app.git", shown(c.SCM), reason)
		}
	}
	if c.SCMWebURL != "" {
		u, err := url.Parse(c.SCMWebURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.addf("SCMWebURL", "%s is not an http(s) URL; give the repository's web page, e.g. https://github.com/you/app, or leave it empty", shown(c.SCMWebURL))
		}
	}
	if err := release.ValidateRevision(c.Remote); err != nil || strings.Contains(c.Remote, "/") {
		p.addf("Remote", "%s is not a git remote name; give the local remote that mirrors SCM, e.g. origin", shown(c.Remote))
	}
	if _, err := release.CompileVersionPattern(c.VersionPattern); err != nil {
		p.add("VersionPattern", err)
	}
	for i, f := range c.PipRequirements {
		p.add(fmt.Sprintf("PipRequirements[%d]", i), release.ValidateRelPath("file", f))
	}
	for i, f := range c.PipRequirementsDev {
		p.add(fmt.Sprintf("PipRequirementsDev[%d]", i), release.ValidateRelPath("file", f))
	}
	for i, f := range c.PipRequirementsProduction {
		p.add(fmt.Sprintf("PipRequirementsProduction[%d]", i), release.ValidateRelPath("file", f))
	}
	p.add("Settings", release.ValidateRelPath("file", c.Settings))
	for i, f := range c.Fixtures {
		p.add(fmt.Sprintf("Fixtures[%d]", i), release.ValidateRelPath("fixture", f))
	}
	if c.Celeryd != "" {
		p.add("Celeryd", release.ValidateRelPath("file", c.Celeryd))
	}
	for i, f := range c.PrivateRequirements {
		p.add(fmt.Sprintf("PrivateRequirements[%d]", i), release.ValidateRelPath("file", f))
	}
	for i, f := range c.PackageInstallScripts {
		p.add(fmt.Sprintf("PackageInstallScripts[%d]", i), release.ValidateRelPath("file", f))
	}
	switch {
	case c.RootDir == "":
	case len(c.RootDir) > maxLocalPathLen:
		p.addf("RootDir", "%s is longer than %d bytes; give the project's directory", shown(c.RootDir), maxLocalPathLen)
	case strings.IndexFunc(c.RootDir, isControl) >= 0 || !utf8.ValidString(c.RootDir):
		p.addf("RootDir", "%s contains a control character or invalid UTF-8; give the project's directory", shown(c.RootDir))
	case strings.ContainsAny(c.RootDir, shellSpecialInQuotes):
		i := strings.IndexAny(c.RootDir, shellSpecialInQuotes)
		p.addf("RootDir", "%s contains %q; move the project to a directory without '$', '`', '\"' or '\\' in its path", shown(c.RootDir), c.RootDir[i])
	}
}

// validateLayout checks the fields that name directories on the hosts.
func (c Config) validateLayout(p *problems) {
	switch {
	case c.Path == "" && c.Unit == "":
		// Path defaults to /var/webapps/<Unit>; the missing Unit is reported.
	case c.Path == "":
		p.addf("Path", "is empty; give the deploy root on the servers, such as /var/webapps/%s", c.Unit)
	case strings.IndexFunc(c.Path, isControl) >= 0 || !utf8.ValidString(c.Path):
		p.addf("Path", "%s contains a control character or invalid UTF-8; give a plain directory such as /var/webapps/five", shown(c.Path))
	case len(c.Path) > maxPathLen:
		p.addf("Path", "%s is longer than %d bytes; give a plain directory such as /var/webapps/five", shown(c.Path), maxPathLen)
	case strings.HasPrefix(c.Path, "-"):
		p.addf("Path", "%s starts with '-'; write it with ./ in front for a path relative to the login user's home", shown(c.Path))
	case path.Clean(c.Path) == "/":
		p.addf("Path", "%s is the root directory; give the app's own directory such as /var/webapps/five", shown(c.Path))
	case slices.Contains(strings.Split(c.Path, "/"), ".."):
		p.addf("Path", "%s has a \"..\" element; give an absolute path such as /var/webapps/five, or one relative to the login user's home without \"..\"", shown(c.Path))
	case strings.ContainsFunc(c.Path, func(r rune) bool { return !isPathRune(r) }):
		i := strings.IndexFunc(c.Path, func(r rune) bool { return !isPathRune(r) })
		r, _ := utf8.DecodeRuneInString(c.Path[i:])
		p.addf("Path", "%s contains %q; give a directory made of letters, digits and '/', '.', '_', '-', '+', '@', ',', ':', such as /var/webapps/five", shown(c.Path), r)
	}
	p.add("ReleasesRoot", simpleName(c.ReleasesRoot))
	p.add("CurrentLink", simpleName(c.CurrentLink))
	p.add("Virtualenv", simpleName(c.Virtualenv))
	if len(c.ReleaseDirs) != 2 {
		p.addf("ReleaseDirs", "has %d names, want exactly 2, e.g. []string{\"a\", \"b\"}", len(c.ReleaseDirs))
	}
	for i, d := range c.ReleaseDirs {
		p.add(fmt.Sprintf("ReleaseDirs[%d]", i), simpleName(d))
	}
	if len(c.ReleaseDirs) == 2 && c.ReleaseDirs[0] == c.ReleaseDirs[1] {
		p.addf("ReleaseDirs", "names %s twice; the two release directories need different names", shown(c.ReleaseDirs[0]))
	}
	if slices.Contains(c.ReleaseDirs, c.CurrentLink) {
		p.addf("CurrentLink", "%s is also one of ReleaseDirs; the link and the directories live side by side under ReleasesRoot, so give it another name", shown(c.CurrentLink))
	}
}

// validateHostSide checks the fields about accounts and commands on the
// hosts, and how hosts are reached.
func (c Config) validateHostSide(p *problems) {
	if !accountRE.MatchString(c.DeployUser) {
		p.addf("DeployUser", "%s is not a user name; give the account that owns the deployed files, e.g. deploy", shown(c.DeployUser))
	}
	if !accountRE.MatchString(c.DeployGroup) {
		p.addf("DeployGroup", "%s is not a group name; give the group of the deployed files, e.g. deploy", shown(c.DeployGroup))
	}
	if len(c.Python) > maxCommandLen || !commandRE.MatchString(c.Python) || strings.HasPrefix(c.Python, "-") {
		p.addf("Python", "%s is not an interpreter; give a command or path such as python3 or /usr/bin/python3.12", shown(c.Python))
	}
	if strings.TrimSpace(c.PipInstallCommand) == "" || badText(c.PipInstallCommand) != "" {
		p.addf("PipInstallCommand", "%s is not a command line; give e.g. \"pip install\"", shown(c.PipInstallCommand))
	}
	if _, err := c.renderRestart(); err != nil {
		p.addf("RestartCommand", "%s: %v; give a text/template over Config such as %s", shown(c.RestartCommand), err, defaultRestartCommand)
	}
	if c.Parallel < 1 {
		p.addf("Parallel", "is %d; give the number of hosts to work on at once, 1 or more", c.Parallel)
	}
	for _, t := range []struct {
		field string
		d     time.Duration
	}{
		{"Timeouts.Connect", c.Timeouts.Connect},
		{"Timeouts.Prepare", c.Timeouts.Prepare},
		{"Timeouts.Switch", c.Timeouts.Switch},
		{"Timeouts.Verify", c.Timeouts.Verify},
		{"SSH.ConnectTimeout", c.SSH.ConnectTimeout},
	} {
		if t.d < 0 {
			p.addf(t.field, "is negative (%v); give a duration such as 30 * time.Second, or 0 for the default", t.d)
		}
	}
	if c.SSH.Port < 1 || c.SSH.Port > 65535 {
		p.addf("SSH.Port", "is %d; give a port in 1..65535", c.SSH.Port)
	}
	if s := c.SSH.StrictHostKeyChecking; s != sshx.StrictYes && s != sshx.StrictAcceptNew {
		p.addf("SSH.StrictHostKeyChecking", "is %s; give %q or %q", shown(s), sshx.StrictYes, sshx.StrictAcceptNew)
	}
	if c.SSH.User != "" && !accountRE.MatchString(c.SSH.User) {
		p.addf("SSH.User", "%s is not a user name; give the login user, or leave it empty for the local user", shown(c.SSH.User))
	}
	file := func(field, f string) {
		if f == "" || strings.IndexFunc(f, isControl) >= 0 {
			p.addf(field, "%s is not a file name", shown(f))
		}
	}
	file("SSH.ConfigFile", c.SSH.ConfigFile)
	file("SSH.KnownHostsFile", c.SSH.KnownHostsFile)
	for i, f := range c.SSH.IdentityFiles {
		file(fmt.Sprintf("SSH.IdentityFiles[%d]", i), f)
	}
}

// validate checks the environment named name, reporting into p.
func (e Environment) validate(p *problems, name string) {
	field := "Environments[" + shown(name) + "]"
	if !envNameRE.MatchString(name) {
		p.addf(field, "%s is not an environment name; use up to 64 letters, digits, '_' and '-', e.g. qa", shown(name))
	}
	if strings.IndexFunc(e.Name, isControl) >= 0 {
		p.addf(field+".Name", "%s contains a control character; give a name to show in output and notifications", shown(e.Name))
	}
	if !envNameRE.MatchString(e.DeploymentType) {
		p.addf(field+".DeploymentType", "%s is not a deployment type; use up to 64 letters, digits, '_' and '-', e.g. QA", shown(e.DeploymentType))
	}
	seen := map[string]bool{}
	for i, h := range e.Hosts {
		hf := fmt.Sprintf("%s.Hosts[%d]", field, i)
		if err := checkHost(h); err != nil {
			p.add(hf, err)
		} else if seen[h] {
			p.addf(hf, "%s is listed twice; list each host once", shown(h))
		}
		seen[h] = true
	}
	if e.LoadBalancer != "" && !loadBalancerRE.MatchString(e.LoadBalancer) {
		p.addf(field+".LoadBalancer", "%s is not a load balancer name; use up to 32 letters, digits and '-'", shown(e.LoadBalancer))
	}
	if e.Branch != "" {
		if err := release.ValidateRevision(e.Branch); err != nil {
			p.add(field+".Branch", err)
		}
	}
	if e.DefaultRevision != "" {
		p.add(field+".DefaultRevision", release.ValidateRevision(e.DefaultRevision))
	}
	if e.PathSuffix != "" && (len(e.PathSuffix) > maxNameLen || strings.ContainsFunc(e.PathSuffix, func(r rune) bool { return !isNameRune(r) }) || strings.Contains(e.PathSuffix, "..")) {
		p.addf(field+".PathSuffix", "%s is not a suffix for Path; use letters, digits, '-', '_' or '.', e.g. -staging", shown(e.PathSuffix))
	}
	for i, f := range e.Requirements {
		p.add(fmt.Sprintf("%s.Requirements[%d]", field, i), release.ValidateRelPath("file", f))
	}
	if e.Crontab != "" {
		p.add(field+".Crontab", release.ValidateRelPath("file", e.Crontab))
	}
	for i, f := range e.Fixtures {
		p.add(fmt.Sprintf("%s.Fixtures[%d]", field, i), release.ValidateRelPath("fixture", f))
	}
}

// maxNameLen bounds a directory or link name of the layout, and
// Environment.PathSuffix.
const maxNameLen = 128

// maxPathLen bounds Config.Path, and maxLocalPathLen Config.RootDir (the
// limit of Linux on a path).
const (
	maxPathLen      = 1024
	maxLocalPathLen = 4096
)

// simpleName checks a single directory or link name: not empty, no '/', not
// "." or "..", no leading '.' or '-', no whitespace or control characters,
// and only ASCII letters, digits, '.', '_' and '-' (the names appear in the
// hosts' scripts and messages, and ':' separates them there).
func simpleName(s string) error {
	bad := func(reason string) error {
		return &release.InputError{Field: "name", Value: s, Reason: reason + "; give a single plain name of letters, digits, '.', '_' and '-', such as releases, a, current or env"}
	}
	switch {
	case s == "":
		return bad("is empty")
	case len(s) > maxNameLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxNameLen))
	case strings.Contains(s, "/"):
		return bad("contains '/'")
	case strings.HasPrefix(s, "."):
		return bad("starts with '.'")
	case strings.HasPrefix(s, "-"):
		return bad("starts with '-'")
	case !utf8.ValidString(s):
		return bad("is not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return isControl(r) || r == ' ' || r == '\t' }):
		return bad("contains whitespace or a control character")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !isNameRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return bad(fmt.Sprintf("contains %q", r))
	}
	return nil
}

func isNameRune(r rune) bool {
	return ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') || r == '.' || r == '_' || r == '-'
}

// isPathRune reports the characters allowed in Config.Path: those of a
// name, '/', and the few others that no shell treats specially.
func isPathRune(r rune) bool {
	return isNameRune(r) || strings.ContainsRune("/+@,:", r)
}

// shellSpecialInQuotes are the characters a POSIX shell still interprets
// inside double quotes.
const shellSpecialInQuotes = "$`\"\\"

// maxCommandLen bounds Config.Python.
const maxCommandLen = 255

// maxSCMLen bounds Config.SCM.
const maxSCMLen = 2048

// badSCM says what is wrong with a git URL for the hosts to clone, or "" if
// nothing is. Besides badText, it refuses characters a shell interprets in
// double quotes, git's ext:: and fd:: transports (which run a command
// rather than fetch) and an SSH user, host or port that starts with '-'
// (which ssh reads as an option).
func badSCM(s string) string {
	if reason := badText(s); reason != "" {
		return reason
	}
	if len(s) > maxSCMLen {
		return fmt.Sprintf("is longer than %d bytes", maxSCMLen)
	}
	if i := strings.IndexAny(s, shellSpecialInQuotes); i >= 0 {
		return fmt.Sprintf("contains %q, which a git URL here must not hold", s[i])
	}
	if transport, _, ok := strings.Cut(s, "::"); ok && !strings.ContainsAny(transport, "/:@") {
		switch strings.ToLower(transport) {
		case "ext", "fd":
			return "uses git's " + transport + ":: transport, which runs a command instead of fetching"
		}
	}
	// The part that names the SSH user, host and port: up to the first
	// '/' after "scheme://", or before the ':' of scp-like user@host:path.
	var host string
	if _, rest, ok := strings.Cut(s, "://"); ok {
		host, _, _ = strings.Cut(rest, "/")
	} else if h, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(h, "/") {
		host = h
	}
	for _, part := range strings.FieldsFunc(host, func(r rune) bool { return r == '@' || r == ':' }) {
		if strings.HasPrefix(part, "-") {
			return fmt.Sprintf("has a user, host or port that starts with '-' (%s), which ssh would read as an option", shown(part))
		}
	}
	return ""
}

// shown quotes a value for an error message with %q, cut to its first 80
// bytes (on a character boundary) when it is longer.
func shown(v string) string {
	const max = 80
	if len(v) <= max {
		return fmt.Sprintf("%q", v)
	}
	cut := max
	for cut > max-utf8.UTFMax && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:cut], len(v))
}

// badText says what is wrong with a one-line setting, or "" if nothing is.
func badText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexFunc(s, isControl) >= 0:
		return "contains a control character (newline, NUL, ...)"
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	}
	return ""
}

// isControl reports ASCII and Unicode control characters (C0, DEL, C1).
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0)
}
