package magetargets

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
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
	if c.LockLease == 0 {
		c.LockLease = release.DefaultLockLease
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
	str(&base.TargetGroup, over.TargetGroup)
	base.AllowNoTag = base.AllowNoTag || over.AllowNoTag
	str(&base.Branch, over.Branch)
	str(&base.DefaultRevision, over.DefaultRevision)
	str(&base.PathSuffix, over.PathSuffix)
	list(&base.Requirements, over.Requirements)
	str(&base.Crontab, over.Crontab)
	list(&base.Fixtures, over.Fixtures)
	str(&base.Delivery, over.Delivery)
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
	return renderCommand("RestartCommand", c.RestartCommand, c)
}

// renderCommand renders the command template text over data: a one-line
// command, not empty.
func renderCommand(name, text string, data any) (string, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
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
