package magetargets

import (
	"context"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/notify"
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

	// Slots, when its Start is set, runs each release dir as processes of
	// its own and moves traffic between them instead of restarting: no
	// request fails while the fleet switches (see Slots).
	Slots Slots

	// Rollout switches the fleet in stages, a canary first, then
	// batches, still all or nothing (see Rollout). Zero switches every
	// host at once.
	Rollout Rollout

	// NoSudo runs the privileged steps (creating Path, restarting)
	// without sudo -n. False means sudo is used.
	NoSudo bool

	// Settings is the settings file, relative to the release directory,
	// that holds MAINTENANCE_MODE. Empty means settings.py.
	Settings string

	// PrivateRequirements are files, relative to RootDir, listing private
	// packages that are not on PyPI: "name==version" (an archive in S3),
	// "name==git-url==ref" (packed with git archive, submodules included),
	// and buedafab's "name" (the archive name.tar.gz in S3) and
	// "name==git-url" (the repository's HEAD).
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
	// MAGEFAB_NO_AUTO_ROLLBACK=1. Empty means no check. The answer is the
	// commit, whole or abbreviated to at least 7 hex digits: bare, a JSON
	// string ("6b4943c..."), or a JSON object's "commit", "sha" or
	// "version". A buedafab sha_url_template works as it is: each %s is
	// {{.Subdomain}}.
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

	// Delivery is how a deploy's commits reach the hosts: DeliverPull,
	// each host fetches them from SCM (over SSH with the agent forwarded,
	// or any URL its git reaches); or DeliverPush, this machine sends
	// each host what it misses over the SSH connection it already has
	// (a thin git bundle from RootDir's repository, which must hold the
	// release with its whole history), so the hosts need no access to
	// SCM, no credentials, no agent forwarding and no network: SCM only
	// becomes their clones' origin. Submodules are not pushed: the hosts
	// fetch a release's submodules from their own URLs.
	// Environment.Delivery overrides it per environment, and
	// MAGEFAB_DELIVERY overrides both. Empty means pull.
	Delivery string

	// FetchLimit is how many hosts at once download from a service the
	// whole fleet shares while they prepare: the git clone or fetch from
	// SCM (pull), and the requirements install (pip, from its package
	// index); the others wait their turn. It is separate from Parallel,
	// so that a fleet is worked on widely without a stampede on the git
	// server or the package index. MAGEFAB_FETCH_LIMIT overrides it.
	// Zero means no limit beyond Parallel.
	FetchLimit int

	// Timeouts bound the phases of a deploy. Zero fields mean their
	// defaults: Connect 10s, Prepare 15m, Switch 2m.
	Timeouts Timeouts

	// LockLease is how long the deploy lock on a host stays its holder's
	// without a heartbeat. The run holding a lock refreshes it while it
	// works, however long that takes; a lock silent for longer (its run
	// was killed, or its machine lost its network) is taken over by the
	// next run, which says whose it was. MAGEFAB_LOCK_LEASE overrides it.
	// At least 10s; zero means 2m.
	LockLease time.Duration

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

	// MaxStartups bounds the connections being opened at once (TCP,
	// handshake, authentication) over the whole run; the others wait for
	// a turn before their ConnectTimeout starts. Zero means 32; negative
	// means no bound.
	MaxStartups int
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
	// environment then needs a LoadBalancer or a TargetGroup, unless it
	// is SOLO.
	Hosts []string

	// LoadBalancer is the name of a Classic Load Balancer (ELB) in front
	// of the hosts. Its running instances become the Hosts when Hosts
	// is empty; the elb:* targets take them out and put them back. With
	// a staged Config.Rollout (Canary or Batch), the switch goes through
	// it: each stage is deregistered and waits until its connections
	// drained, switches, is checked, and is registered again and waited
	// in service before the next goes. Every host of the rollout must
	// then be a running instance registered with it. Empty means none.
	// At most one of LoadBalancer and TargetGroup.
	LoadBalancer string

	// TargetGroup is the target group of an Application or Network Load
	// Balancer in front of the hosts: its name, or its ARN (needed when
	// several accounts or regions hold one of that name). Its running
	// targets (by DNS name for target type instance, by IP address for
	// type ip) become the Hosts when Hosts is empty, and with a staged
	// Config.Rollout the switch goes through it as through LoadBalancer:
	// each stage is deregistered, waits until it is no longer draining
	// (the deregistration delay), switches, is checked, and is
	// registered again and waited healthy. Empty means none. At most one
	// of LoadBalancer and TargetGroup; Config.Rollout.HAProxy cannot be
	// set with either when the rollout goes through them.
	TargetGroup string

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
	// e.g. "-staging": letters, digits, '-', '_' and '.', and Path with it
	// must still be a valid Path. Empty means none.
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

	// Delivery is Config.Delivery for this environment: DeliverPull or
	// DeliverPush. Empty means Config.Delivery.
	Delivery string
}

// How a deploy's commits reach the hosts (Config.Delivery).
const (
	// DeliverPull: each host fetches the release from SCM.
	DeliverPull = "pull"
	// DeliverPush: this machine sends each host the commits it misses,
	// over its SSH connection.
	DeliverPush = "push"
)

// Names of the built-in environments.
const (
	envLocalhost   = "localhost"
	envDevelopment = "development"
	envStaging     = "staging"
	envProduction  = "production"
)
