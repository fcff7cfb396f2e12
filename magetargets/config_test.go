package magetargets

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
)

// configure sets c as the configuration for the rest of the test and
// returns what the targets will read.
func configure(t *testing.T, c Config) Config {
	t.Helper()
	Configure(c)
	t.Cleanup(resetState)
	got, err := currentConfig()
	if err != nil {
		t.Fatalf("currentConfig() after Configure = %v", err)
	}
	return got
}

func resetState() {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.cfg, state.env = nil, ""
}

func TestConfigureDefaults(t *testing.T) {
	c := configure(t, Config{Unit: "five", SCM: "git@github.com:bueda/five.git"})
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		field string
		got   any
		want  any
	}{
		{"Path", c.Path, "/var/webapps/five"},
		{"Remote", c.Remote, "origin"},
		{"ReleasesRoot", c.ReleasesRoot, "releases"},
		{"ReleaseDirs", c.ReleaseDirs, []string{"a", "b"}},
		{"CurrentLink", c.CurrentLink, "current"},
		{"Virtualenv", c.Virtualenv, "env"},
		{"Python", c.Python, "python3"},
		{"VersionPattern", c.VersionPattern, release.DefaultVersionPattern},
		{"SignTags", c.SignTags, false},
		{"DeployUser", c.DeployUser, "deploy"},
		{"DeployGroup", c.DeployGroup, "deploy"},
		{"PipInstallCommand", c.PipInstallCommand, "pip install"},
		{"RestartCommand", c.RestartCommand, "/etc/init.d/{{.Unit}} restart"},
		{"NoSudo", c.NoSudo, false},
		{"Settings", c.Settings, "settings.py"},
		{"DefaultEnvironment", c.DefaultEnvironment, ""},
		{"Parallel", c.Parallel, 16},
		{"Timeouts", c.Timeouts, Timeouts{Connect: 10 * time.Second, Prepare: 15 * time.Minute, Switch: 2 * time.Minute, Verify: 30 * time.Second}},
		{"LockLease", c.LockLease, 2 * time.Minute},
		{"SSH.ConfigFile", c.SSH.ConfigFile, "~/.ssh/config"},
		{"SSH.KnownHostsFile", c.SSH.KnownHostsFile, "~/.ssh/known_hosts"},
		{"SSH.Port", c.SSH.Port, 22},
		{"SSH.StrictHostKeyChecking", c.SSH.StrictHostKeyChecking, "yes"},
		{"SSH.ConnectTimeout", c.SSH.ConnectTimeout, time.Duration(0)},
		{"RootDir", c.RootDir, wd},
		{"Environments", c.envNames(), []string{"development", "localhost", "production", "staging"}},
		{`Environments["localhost"]`, c.Environments["localhost"], Environment{Name: "localhost", DeploymentType: "SOLO", AllowNoTag: true}},
		{`Environments["development"]`, c.Environments["development"], Environment{Name: "development", DeploymentType: "DEV", AllowNoTag: true}},
		{`Environments["staging"]`, c.Environments["staging"], Environment{Name: "staging", DeploymentType: "STAGING", AllowNoTag: true, PathSuffix: "-staging"}},
		{`Environments["production"]`, c.Environments["production"], Environment{Name: "production", DeploymentType: "PRODUCTION", Branch: "master", DefaultRevision: "origin/master"}},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("Configure(...).%s = %#v, want %#v", f.field, f.got, f.want)
		}
	}
	if err := c.validate(true); err != nil {
		t.Errorf("validate(true) of the defaults = %v, want nil", err)
	}
}

func TestConfigureMerge(t *testing.T) {
	hosts := []string{"web1", "web2"}
	given := Config{
		Unit:   "five",
		SCM:    "git@github.com:bueda/five.git",
		Remote: "upstream",
		Environments: map[string]Environment{
			"production": {Hosts: hosts},
			"staging":    {Hosts: []string{"stage1"}, Branch: "release"},
			"qa":         {Hosts: []string{"qa1"}, AllowNoTag: true},
			"demo":       {Name: "Demo", DeploymentType: "STAGING", Hosts: []string{"demo1"}},
		},
	}
	c := configure(t, given)

	for _, e := range []struct {
		name string
		want Environment
	}{
		{"production", Environment{Name: "production", DeploymentType: "PRODUCTION", Hosts: hosts, Branch: "master", DefaultRevision: "upstream/master"}},
		{"staging", Environment{Name: "staging", DeploymentType: "STAGING", Hosts: []string{"stage1"}, AllowNoTag: true, Branch: "release", PathSuffix: "-staging"}},
		{"qa", Environment{Name: "qa", DeploymentType: "QA", Hosts: []string{"qa1"}, AllowNoTag: true}},
		{"demo", Environment{Name: "Demo", DeploymentType: "STAGING", Hosts: []string{"demo1"}}},
		{"development", Environment{Name: "development", DeploymentType: "DEV", AllowNoTag: true}},
	} {
		if got := c.Environments[e.name]; !reflect.DeepEqual(got, e.want) {
			t.Errorf("Environments[%q] = %+v, want %+v", e.name, got, e.want)
		}
	}

	// Configure copied what it was given.
	hosts[0] = "changed"
	given.Environments["qa"] = Environment{Hosts: []string{"other"}}
	c2, _ := currentConfig()
	if got := c2.Environments["production"].Hosts; !slices.Equal(got, []string{"web1", "web2"}) {
		t.Errorf("production Hosts after the caller changed its slice = %q, want [web1 web2]", got)
	}
	if got := c2.Environments["qa"].Hosts; !slices.Equal(got, []string{"qa1"}) {
		t.Errorf("qa Hosts after the caller changed its map = %q, want [qa1]", got)
	}
	// And what the targets read is a copy too.
	c2.Environments["production"].Hosts[0] = "mutated"
	if c3, _ := currentConfig(); c3.Environments["production"].Hosts[0] != "web1" {
		t.Errorf("a change to a config from currentConfig() reached the next one: %q", c3.Environments["production"].Hosts)
	}
}

func TestConfigureReplaces(t *testing.T) {
	configure(t, Config{Unit: "five", Environments: map[string]Environment{"qa": {}}})
	c := configure(t, Config{Unit: "six"})
	if c.Unit != "six" || c.Path != "/var/webapps/six" {
		t.Errorf("after a second Configure: Unit, Path = %q, %q, want six, /var/webapps/six", c.Unit, c.Path)
	}
	if _, ok := c.Environments["qa"]; ok {
		t.Errorf("after a second Configure without qa: Environments = %q, want qa gone", c.envNames())
	}
}

func TestNoConfiguration(t *testing.T) {
	resetState()
	_, err := currentConfig()
	want := "magetargets: no configuration: call magetargets.Configure in your magefile's init()"
	if err == nil || err.Error() != want {
		t.Errorf("currentConfig() before Configure = %v, want %q", err, want)
	}
	if err := (Env{}).Production(); err == nil || err.Error() != want {
		t.Errorf("Env.Production() before Configure = %v, want %q", err, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		change func(*Config)
		want   []string // each a part of the error
	}{
		{"no unit", func(c *Config) { c.Unit = "" }, []string{"Config.Unit: is required"}},
		{"bad unit", func(c *Config) { c.Unit = "my app" }, []string{`Config.Unit "my app": contains ' '`}},
		{"unit with shell", func(c *Config) { c.Unit = "$(id)" }, []string{`Config.Unit "$(id)"`}},
		{"no scm", func(c *Config) { c.SCM = "" }, []string{"Config.SCM: is required for deploys"}},
		{"scm newline", func(c *Config) { c.SCM = "git@x:y.git\nid" }, []string{"Config.SCM: ", "control character"}},
		{"scm web url", func(c *Config) { c.SCMWebURL = "github.com/x" }, []string{"Config.SCMWebURL: ", "http(s) URL"}},
		{"remote", func(c *Config) { c.Remote = "-x" }, []string{`Config.Remote: "-x" is not a git remote name`}},
		{"version pattern", func(c *Config) { c.VersionPattern = `^v(` }, []string{`Config.VersionPattern "^v(": is not a valid regular expression`}},
		{"one release dir", func(c *Config) { c.ReleaseDirs = []string{"a"} }, []string{"Config.ReleaseDirs: has 1 names, want exactly 2"}},
		{"same release dirs", func(c *Config) { c.ReleaseDirs = []string{"a", "a"} }, []string{`Config.ReleaseDirs: names "a" twice`}},
		{"release dir path", func(c *Config) { c.ReleaseDirs = []string{"a", "../b"} }, []string{`Config.ReleaseDirs[1] "../b": contains '/'`}},
		{"release dir dots", func(c *Config) { c.ReleaseDirs = []string{"..", "b"} }, []string{`Config.ReleaseDirs[0] "..": starts with '.'`}},
		{"link is a dir", func(c *Config) { c.CurrentLink = "a" }, []string{`Config.CurrentLink: "a" is also one of ReleaseDirs`}},
		{"releases root", func(c *Config) { c.ReleasesRoot = "x/y" }, []string{`Config.ReleasesRoot "x/y": contains '/'`}},
		{"current link empty", func(c *Config) { c.CurrentLink = " " }, []string{`Config.CurrentLink " ": contains whitespace`}},
		{"virtualenv", func(c *Config) { c.Virtualenv = ".." }, []string{`Config.Virtualenv "..": starts with '.'`}},
		{"path dots", func(c *Config) { c.Path = "/var/../etc" }, []string{`Config.Path: "/var/../etc" has a ".." element`}},
		{"relative path dots", func(c *Config) { c.Path = "apps/../../x" }, []string{`Config.Path: "apps/../../x" has a ".." element`}},
		{"path root", func(c *Config) { c.Path = "/" }, []string{`Config.Path: "/" is the root directory`}},
		{"path control", func(c *Config) { c.Path = "/var/x\ny" }, []string{"Config.Path: ", "control character"}},
		{"path option", func(c *Config) { c.Path = "-rf" }, []string{`Config.Path: "-rf" starts with '-'`}},
		{"pip absolute", func(c *Config) { c.PipRequirements = []string{"ok.txt", "/etc/passwd"} }, []string{`Config.PipRequirements[1] "/etc/passwd": is an absolute path`}},
		{"pip dev dots", func(c *Config) { c.PipRequirementsDev = []string{"../x.txt"} }, []string{`Config.PipRequirementsDev[0] "../x.txt": has a ".." element`}},
		{"pip production empty", func(c *Config) { c.PipRequirementsProduction = []string{""} }, []string{`Config.PipRequirementsProduction[0] "": is empty`}},
		{"settings", func(c *Config) { c.Settings = "/etc/settings.py" }, []string{`Config.Settings "/etc/settings.py": is an absolute path`}},
		{"parallel", func(c *Config) { c.Parallel = -1 }, []string{"Config.Parallel: is -1"}},
		{"deploy user", func(c *Config) { c.DeployUser = "root;id" }, []string{`Config.DeployUser: "root;id" is not a user name`}},
		{"deploy group", func(c *Config) { c.DeployGroup = "-g" }, []string{`Config.DeployGroup: "-g" is not a group name`}},
		{"python", func(c *Config) { c.Python = "python3 -c 'x'" }, []string{"Config.Python: ", "is not an interpreter"}},
		{"restart parse", func(c *Config) { c.RestartCommand = "/etc/init.d/{{.Unit restart" }, []string{`Config.RestartCommand: "/etc/init.d/{{.Unit restart"`}},
		{"restart field", func(c *Config) { c.RestartCommand = "{{.Nope}}" }, []string{`Config.RestartCommand: "{{.Nope}}"`, "Nope"}},
		{"restart empty", func(c *Config) { c.RestartCommand = "{{if false}}x{{end}}" }, []string{"Config.RestartCommand: ", "renders to nothing"}},
		{"timeout", func(c *Config) { c.Timeouts.Prepare = -time.Second }, []string{"Config.Timeouts.Prepare: is negative"}},
		{"lock lease negative", func(c *Config) { c.LockLease = -time.Minute }, []string{"Config.LockLease: is -1m0s", "at least 10s"}},
		{"lock lease short", func(c *Config) { c.LockLease = time.Second }, []string{"Config.LockLease: is 1s", "at least 10s"}},
		{"ssh port", func(c *Config) { c.SSH.Port = 70000 }, []string{"Config.SSH.Port: is 70000"}},
		{"ssh strict", func(c *Config) { c.SSH.StrictHostKeyChecking = "no" }, []string{`Config.SSH.StrictHostKeyChecking: is "no"`}},
		{"default environment", func(c *Config) { c.DefaultEnvironment = "prod" }, []string{`Config.DefaultEnvironment: "prod" is not an environment; use one of development, localhost, production, staging`}},
		{"env hosts", withEnv("production", Environment{Name: "production", DeploymentType: "PRODUCTION", Hosts: []string{"web1", "-oProxyCommand=id"}}), []string{`Config.Environments["production"].Hosts[1]: `, "starts with '-'"}},
		{"env hosts twice", withEnv("staging", Environment{Name: "staging", DeploymentType: "STAGING", Hosts: []string{"web1", "web1"}}), []string{`Config.Environments["staging"].Hosts[1]: "web1" is listed twice`}},
		{"env name", withEnv("q a", Environment{Name: "q a", DeploymentType: "QA"}), []string{`Config.Environments["q a"]: "q a" is not an environment name`}},
		{"env type", withEnv("qa", Environment{Name: "qa", DeploymentType: "Q/A"}), []string{`Config.Environments["qa"].DeploymentType: "Q/A"`}},
		{"env revision", withEnv("qa", Environment{Name: "qa", DeploymentType: "QA", DefaultRevision: "$(id)"}), []string{`Config.Environments["qa"].DefaultRevision "$(id)": contains '$'`}},
		{"env suffix", withEnv("qa", Environment{Name: "qa", DeploymentType: "QA", PathSuffix: "/../x"}), []string{`Config.Environments["qa"].PathSuffix: "/../x"`}},
		{"env requirements", withEnv("qa", Environment{Name: "qa", DeploymentType: "QA", Requirements: []string{"/x"}}), []string{`Config.Environments["qa"].Requirements[0] "/x"`}},
		{"env crontab", withEnv("qa", Environment{Name: "qa", DeploymentType: "QA", Crontab: "../cron"}), []string{`Config.Environments["qa"].Crontab "../cron"`}},
		{"env load balancer", withEnv("qa", Environment{Name: "qa", DeploymentType: "QA", LoadBalancer: "my lb"}), []string{`Config.Environments["qa"].LoadBalancer: "my lb"`}},
		{"env load balancer hyphen", withEnv("qa", Environment{Name: "qa", DeploymentType: "QA", LoadBalancer: "web-"}), []string{`Config.Environments["qa"].LoadBalancer: "web-" is not a Classic Load Balancer name`}},
		{"env suffix makes dots", func(c *Config) {
			c.Path = "/var/webapps/five/."
			c.Environments["qa"] = Environment{Name: "qa", DeploymentType: "QA", PathSuffix: "."}
		}, []string{`Config.Environments["qa"].PathSuffix: "." makes Path "/var/webapps/five/..", which has a ".." element`}},
		{"env suffix too long", func(c *Config) { c.Path = "/" + strings.Repeat("p", 1019) }, []string{`Config.Environments["staging"].PathSuffix: "-staging" makes Path`, "which is longer than 1024 bytes"}},
		{"path tilde", func(c *Config) { c.Path = "~/five" }, []string{`Config.Path: "~/five" contains '~'`}},
		{"path C1 control", func(c *Config) { c.Path = "/var/five\u0085" }, []string{`Config.Path: "/var/five\u0085" contains a control character`}},
		{"release dir backslash", func(c *Config) { c.ReleaseDirs = []string{`a\b`, "b"} }, []string{`Config.ReleaseDirs[0] "a\\b": contains '\\'; give a single plain name`}},
	} {
		cfg := withDefaults(Config{Unit: "five", SCM: "git@github.com:bueda/five.git"})
		c.change(&cfg)
		err := cfg.validate(true)
		if err == nil {
			t.Errorf("%s: validate(true) = nil, want an error containing %q", c.name, c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: validate(true) = %v, want an error containing %q", c.name, err, w)
			}
		}
	}
}

// withEnv returns a change to a Config that sets its environment name.
func withEnv(name string, e Environment) func(*Config) {
	return func(c *Config) { c.Environments[name] = e }
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	c := withDefaults(Config{})
	c.Parallel = 0
	c.ReleaseDirs = []string{"a", "a"}
	c.PipRequirements = []string{"/abs"}
	err := c.validate(true)
	if err == nil {
		t.Fatal("validate(true) = nil, want every problem")
	}
	lines := strings.Split(err.Error(), "\n")
	if !strings.HasPrefix(lines[0], "magetargets: the configuration given to magetargets.Configure has 5 problem(s):") {
		t.Errorf("validate(true) first line = %q, want a count of the problems", lines[0])
	}
	var fields []string
	for _, l := range lines[1:] {
		field, _, _ := strings.Cut(l, ":")
		field, _, _ = strings.Cut(field, " ")
		fields = append(fields, field)
	}
	want := []string{"Config.Unit", "Config.SCM", "Config.PipRequirements[0]", "Config.ReleaseDirs", "Config.Parallel"}
	if !slices.Equal(fields, want) {
		t.Errorf("validate(true) lines name %q, want %q\n%v", fields, want, err)
	}
	var ie *release.InputError
	if !errors.As(err, &ie) {
		t.Errorf("validate(true) = %v, want the *release.InputError of PipRequirements reachable with errors.As", err)
	}

	// SCM is needed by deploys only.
	ok := withDefaults(Config{Unit: "five"})
	if err := ok.validate(false); err != nil {
		t.Errorf("validate(false) without SCM = %v, want nil", err)
	}
	if err := ok.validate(true); err == nil || !strings.Contains(err.Error(), "Config.SCM") {
		t.Errorf("validate(true) without SCM = %v, want an error naming Config.SCM", err)
	}
}

func TestEnvPath(t *testing.T) {
	t.Parallel()
	c := withDefaults(Config{Unit: "five"})
	for _, e := range []struct{ env, want string }{
		{"production", "/var/webapps/five"},
		{"staging", "/var/webapps/five-staging"},
		{"development", "/var/webapps/five"},
	} {
		if got := c.envPath(c.Environments[e.env]); got != e.want {
			t.Errorf("envPath(%q) = %q, want %q", e.env, got, e.want)
		}
	}
}

func TestRestartCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		tmpl, want string
	}{
		{"", "/etc/init.d/five restart"},
		{"sudo systemctl restart {{.Unit}}.service", "sudo systemctl restart five.service"},
		{"supervisorctl restart {{.Unit}}-{{.Python}}", "supervisorctl restart five-python3"},
	} {
		cfg := withDefaults(Config{Unit: "five", RestartCommand: c.tmpl})
		got, err := cfg.restartCommand()
		if got != c.want || err != nil {
			t.Errorf("restartCommand() of %q = %q, %v, want %q, nil", c.tmpl, got, err, c.want)
		}
	}
	cfg := withDefaults(Config{Unit: "five", RestartCommand: "{{.Missing}}"})
	if _, err := cfg.restartCommand(); err == nil || !strings.Contains(err.Error(), "Config.RestartCommand") {
		t.Errorf("restartCommand() of {{.Missing}} = %v, want an error naming Config.RestartCommand", err)
	}
}

func TestRequirements(t *testing.T) {
	t.Parallel()
	c := withDefaults(Config{
		Unit:                      "five",
		PipRequirements:           []string{"req/common.txt"},
		PipRequirementsDev:        []string{"req/dev.txt", "req/common.txt"},
		PipRequirementsProduction: []string{"req/prod.txt"},
		Environments: map[string]Environment{
			"staging": {Requirements: []string{"req/staging.txt", "req/prod.txt"}},
			"qa":      {Requirements: []string{"req/qa.txt"}},
		},
	})
	for _, e := range []struct {
		env  string
		want []string
	}{
		{"localhost", []string{"req/common.txt", "req/dev.txt"}},
		{"development", []string{"req/common.txt", "req/dev.txt", "req/prod.txt"}},
		{"staging", []string{"req/common.txt", "req/prod.txt", "req/staging.txt"}},
		{"production", []string{"req/common.txt", "req/prod.txt"}},
		{"qa", []string{"req/common.txt", "req/prod.txt", "req/qa.txt"}},
	} {
		if got := c.requirements(c.Environments[e.env]); !slices.Equal(got, e.want) {
			t.Errorf("requirements(%q) = %q, want %q", e.env, got, e.want)
		}
	}
}

// TestNoStrayTargets checks that mage makes no target of a package-level
// function: mage turns every exported function whose parameters are
// strings, ints, float64s, bools or durations (after an optional context)
// and whose result is nothing or an error into a target, and the targets
// of this package all live in namespaces.
func TestNoStrayTargets(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() {
				continue
			}
			if mageTarget(fn.Type) {
				t.Errorf("%s: func %s is a mage target; unexport it or give it a parameter mage does not take", fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
	}
}

// mageTarget reports whether mage v1.17 would make a target of a function
// of type ft.
func mageTarget(ft *ast.FuncType) bool {
	if res := ft.Results; res != nil && (res.NumFields() > 1 || res.NumFields() == 1 && typeName(res.List[0].Type) != "error") {
		return false
	}
	for i, p := range ft.Params.List {
		typ := p.Type
		if star, ok := typ.(*ast.StarExpr); ok {
			typ = star.X
		}
		switch typeName(typ) {
		case "string", "int", "float64", "bool", "time.Duration":
		case "context.Context":
			if i != 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return typeName(e.X) + "." + e.Sel.Name
	}
	return fmt.Sprintf("%T", e)
}
