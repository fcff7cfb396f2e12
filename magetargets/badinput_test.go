package magetargets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
)

// sshtestHosts starts an in-process SSH server for each alias, closed when
// the test ends, and writes one ssh_config file that names them all. setup,
// if not nil, configures each server before it starts.
func sshtestHosts(t *testing.T, aliases []string, setup func(alias string, srv *sshtest.Server)) ([]*sshtest.Server, string) {
	t.Helper()
	var config bytes.Buffer
	var servers []*sshtest.Server
	for _, alias := range aliases {
		srv := sshtest.NewUnstartedServer()
		srv.Alias = alias
		if setup != nil {
			setup(alias, srv)
		}
		srv.Start()
		t.Cleanup(srv.Close)
		files, err := srv.WriteClientFiles(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(files.ConfigFile)
		if err != nil {
			t.Fatal(err)
		}
		config.Write(b)
		servers = append(servers, srv)
	}
	file := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(file, config.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return servers, file
}

// Stand-ins for the host's tools. Each logs its calls to $HOME/tools.log,
// one line per call: the tool's name and its arguments, each followed by
// a NUL byte.
const (
	// standInPython makes virtualenvs that hold copies of itself and of
	// the pip next to it; its -c probes print nothing.
	standInPython = `#!/bin/sh
if [ "$1" = -m ] && [ "$2" = venv ]; then
  shift 2
  [ "$1" = --without-pip ] && shift
  mkdir -p "$1/bin" && cp "$0" "$1/bin/python" && cp "${0%/*}/pip" "$1/bin/pip"
  exit
fi
[ "$1" = -c ] && exit 0
{ printf '%s\0' python "$@"; echo; } >> "$HOME/tools.log"
`
	standInPip     = "#!/bin/sh\n{ printf '%s\\0' pip \"$@\"; echo; } >> \"$HOME/tools.log\"\n"
	standInCrontab = "#!/bin/sh\n{ printf '%s\\0' crontab \"$@\"; echo; } >> \"$HOME/tools.log\"\n"
	installScript  = "#!/bin/sh\n{ printf '%s\\0' script \"$0\"; echo; } >> \"$HOME/tools.log\"\n"
)

// hostProject is a project whose deploys go to one in-process SSH host,
// h1: a repository with a bare remote (see newRepos) holding manage.py and
// settings.py, and a host whose HOME is a temporary directory and whose
// PATH starts with stand-ins for python3, pip and crontab.
type hostProject struct {
	repos
	srv       *sshtest.Server
	home      string // the host's HOME and working directory
	sshConfig string // names the host h1
	python    string // the python3 stand-in, for Config.Python
	head      string // the remote's master
	path      string // the deploy root of the case running, relative to home
	out       *bytes.Buffer
}

func newHostProject(t *testing.T) *hostProject {
	t.Helper()
	p := &hostProject{repos: newRepos(t), home: t.TempDir()}
	bin := t.TempDir()
	for name, body := range map[string]string{"python3": standInPython, "pip": standInPip, "crontab": standInCrontab} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.python = filepath.Join(bin, "python3")
	p.head = p.commitFiles(t, map[string]string{
		"manage.py":   "# Django's manage.py\n",
		"settings.py": "MAINTENANCE_MODE = False\n",
	})
	// The host keeps the scripts it is sent (release's script cache)
	// outside its HOME, whose tree the tests compare.
	cache := t.TempDir()
	servers, config := sshtestHosts(t, []string{"h1"}, func(_ string, srv *sshtest.Server) {
		srv.Dir = p.home
		srv.Env = []string{"HOME=" + p.home, "XDG_CACHE_HOME=" + cache, "PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin"}
	})
	p.srv, p.sshConfig = servers[0], config
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("VIRTUAL_ENV", "")
	p.out = captureOut(t)
	old := prompts
	prompts = &prompter{In: strings.NewReader(""), Out: io.Discard, IsTerminal: func() bool { return false }}
	t.Cleanup(func() { prompts = old })
	return p
}

// config is the project's configuration with the deploy root path (relative
// to the host's HOME): production and development deploy to h1.
func (p *hostProject) config(path string) Config {
	return Config{
		Unit:           "five",
		SCM:            p.remote,
		RootDir:        p.clone,
		Path:           path,
		Python:         p.python,
		NoSudo:         true,
		RestartCommand: "true",
		Timeouts:       Timeouts{Prepare: time.Minute, Switch: 30 * time.Second},
		SSH:            SSH{ConfigFile: p.sshConfig},
		Environments: map[string]Environment{
			envProduction:  {Hosts: []string{"h1"}},
			envDevelopment: {Hosts: []string{"h1"}},
		},
	}
}

// commitFiles commits files (name to content, mode 0755) to master and
// pushes it; it returns the new commit.
func (p *hostProject) commitFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		f := filepath.Join(p.clone, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, p.clone, "add", "-A")
	sha := commit(t, p.clone, "files")
	git(t, p.clone, "push", "-q", "origin", "master")
	return sha
}

// toolsLogSize is where the stand-ins' log ends now.
func (p *hostProject) toolsLogSize() int {
	b, _ := os.ReadFile(filepath.Join(p.home, "tools.log"))
	return len(b)
}

// toolCalls returns the calls the stand-ins logged after mark, each as the
// tool's name followed by its arguments.
func (p *hostProject) toolCalls(mark int) [][]string {
	b, _ := os.ReadFile(filepath.Join(p.home, "tools.log"))
	var calls [][]string
	for _, line := range strings.Split(string(b[min(mark, len(b)):]), "\x00\n") {
		if line != "" {
			calls = append(calls, strings.Split(line, "\x00"))
		}
	}
	return calls
}

// hostScript returns the script of a command as sshx sends it, without the
// process-group wrapper and without sudo.
func hostScript(cmd string) string {
	for _, prefix := range []string{"exec /bin/sh -c ", "exec 3<&0; setsid /bin/sh -c ", "sudo -n -- /bin/sh -c "} {
		if rest, ok := strings.CutPrefix(cmd, prefix); ok {
			cmd = shellWord(rest)
		}
	}
	return cmd
}

// shellWord returns the first word of s as a POSIX shell reads it, for
// words made of single-quoted runs, backslash escapes and plain
// characters (what sshx.Quote produces).
func shellWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n':
			return b.String()
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return b.String() + s[i+1:]
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '\\':
			if i+1 < len(s) {
				b.WriteByte(s[i+1])
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Quoting states of the bytes of a script.
const (
	bare = iota
	inSingleQuotes
	inDoubleQuotes
)

// quoting returns the quoting state of each byte of a shell script. It
// follows quotes and backslashes only, which is enough for the scripts
// magefab writes: quotes nested in "$(...)" pair up again.
func quoting(s string) []byte {
	st := make([]byte, len(s))
	state := byte(bare)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case bare:
			switch c {
			case '\\':
				i++
			case '\'':
				state = inSingleQuotes
			case '"':
				state = inDoubleQuotes
			}
		case inSingleQuotes:
			if c == '\'' {
				state = bare
			} else {
				st[i] = inSingleQuotes
			}
		case inDoubleQuotes:
			switch {
			case c == '"':
				state = bare
			case c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0:
				st[i] = inDoubleQuotes
				i++
				if i < len(s) {
					st[i] = inDoubleQuotes
				}
			default:
				st[i] = inDoubleQuotes
			}
		}
	}
	return st
}

// unquotedUses returns every place in the scripts of cmds where v appears
// other than as a literal: outside quotes, or inside double quotes while
// holding a character the shell interprets there. It also returns how
// many times v appears.
func unquotedUses(cmds []string, v string) (bad []string, uses int) {
	if v == "" {
		return nil, 0
	}
	plain := sshx.Quote(v) == v // nothing in it that a shell interprets
	for _, cmd := range cmds {
		s := hostScript(cmd)
		st := quoting(s)
		for off := 0; ; {
			i := strings.Index(s[off:], v)
			if i < 0 {
				break
			}
			i += off
			uses++
			span := st[i : i+len(v)]
			single := !slices.ContainsFunc(span, func(b byte) bool { return b != inSingleQuotes })
			double := !slices.ContainsFunc(span, func(b byte) bool { return b != inDoubleQuotes }) && !strings.ContainsAny(v, "$`\"\\")
			if !plain && !single && !double {
				bad = append(bad, s[max(0, i-60):min(len(s), i+len(v)+60)])
			}
			off = i + 1
		}
	}
	return bad, uses
}

// given is the input of one case: the configuration, the variables, the
// files the project holds, and the target that runs.
type given struct {
	cfg   Config
	env   map[string]string                            // variables; MAGEFAB_ENV is development unless set here
	files map[string]string                            // committed to the project before the target runs
	run   func(ctx context.Context, head string) error // the target; head is the remote's master
}

// dev changes the development environment of g.
func (g *given) dev(change func(*Environment)) {
	e := g.cfg.Environments[envDevelopment]
	change(&e)
	g.cfg.Environments[envDevelopment] = e
}

// deployHead runs deploy:commit of head: in development, the commit is
// deployed untagged.
func deployHead(ctx context.Context, head string) error { return Deploy{}.Commit(ctx, head) }

// nastyValue is a value every user-supplied setting is tried with. In v,
// CANARY stands for the path of the case's canary file, CANARYNAME for its
// name (in the host's HOME) where a value cannot hold a '/'.
type nastyValue struct{ name, v string }

var nastyValues = []nastyValue{
	{"semicolon", "v1;touch CANARY"},
	{"command substitution", "$(touch CANARY)"},
	{"command substitution without spaces", "v1$(cd;touch${IFS}CANARYNAME)"},
	{"backticks", "v1`touch CANARY`"},
	{"pipe", "v1|touch CANARY"},
	{"and", "v1&&touch CANARY"},
	{"single quotes", "v1';touch CANARY;'"},
	{"double quotes", `v1";touch CANARY;"`},
	{"spaces", "v1 touch CANARY"},
	{"newline", "v1\ntouch CANARY"},
	{"dot-dot", "../../CANARYNAME"},
	{"git option", "--upload-pack=touch CANARY"},
	{"leading dash", "-v1"},
	{"empty", ""},
	{"100 KB", strings.Repeat("v", 100<<10)},
	{"not UTF-8", "v1\xff\xfe"},
	{"NUL", "v1\x00touch CANARY"},
}

// inputField is a user-supplied value: how it is given, and what becomes
// of the nastyValues there.
type inputField struct {
	name     string
	variable bool                        // an environment variable: it cannot hold NUL, and empty is unset
	dry      bool                        // literal values run deploy:commit with MAGEFAB_DRY_RUN=1, which changes nothing on the host
	restart  bool                        // literal values run maint:restart, which needs no release on the host
	give     func(g *given, v string)    // puts v where the field is
	giveList func(g *given, vs []string) // for a setting that holds a list: puts all of vs there, instead of give
	want     []string                    // parts of the error for a value that is refused
	literal  []string                    // names of the nastyValues taken literally: the target runs
	skip     []string                    // names of the nastyValues that mean something else here
	extra    []nastyValue                // further values taken literally
	refuse   []nastyValue                // further values refused
	hostErr  string                      // a literal value makes the host fail with an error holding this; "" means the target succeeds
	// check looks for evidence that a literal value arrived whole, given
	// the target's error and the stand-ins' calls; nil checks nothing more.
	check func(t *testing.T, p *hostProject, v string, err error, calls [][]string)
}

// fileValues are the nastyValues a file name may hold: everything a shell
// does not interpret inside double quotes.
var fileValues = []string{"semicolon", "pipe", "and", "single quotes", "spaces"}

// checkFixture checks that manage.py loaddata was given the fixture v.
func checkFixture(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
	t.Helper()
	for _, c := range calls {
		if i := slices.Index(c, "loaddata"); i > 0 && c[i-1] == "manage.py" && slices.Contains(c[i+1:], v) {
			return
		}
	}
	t.Errorf("manage.py loaddata was not given the fixture %q: the calls were %q", v, calls)
}

// fileNamed returns files named names, each holding body.
func fileNamed(names []string, body string) map[string]string {
	files := map[string]string{}
	for _, n := range names {
		files[n] = body
	}
	return files
}

// wantCall checks that some call of a stand-in had the arguments want, in
// order, among its own.
func wantCall(t *testing.T, calls [][]string, want ...string) {
	t.Helper()
	for _, c := range calls {
		for i := range c {
			if slices.Equal(c[i:min(len(c), i+len(want))], want) {
				return
			}
		}
	}
	t.Errorf("no call of the host's tools had the arguments %q; the calls were %q", want, calls)
}

func requirementField(name string, put func(g *given, vs []string), want string) inputField {
	return inputField{
		name: name,
		giveList: func(g *given, vs []string) {
			put(g, vs)
			g.files = fileNamed(vs, "# no requirements\n")
		},
		want:    []string{want},
		literal: fileValues,
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			wantCall(t, calls, "-r", v)
		},
	}
}

var inputFields = []inputField{
	{
		name: "deploy:tag argument",
		give: func(g *given, v string) {
			g.env[EnvVar] = envProduction
			g.cfg.VersionPattern = "^v" // only ValidateTag's own rules count
			g.run = func(ctx context.Context, _ string) error { return Deploy{}.Tag(ctx, v) }
		},
		want: []string{"release: invalid tag"},
	},
	{
		name: "deploy:commit argument",
		give: func(g *given, v string) {
			g.run = func(ctx context.Context, _ string) error { return Deploy{}.Commit(ctx, v) }
		},
		want: []string{"release: invalid commit"},
	},
	{
		name: "Environments key",
		give: func(g *given, v string) { g.cfg.Environments[v] = Environment{Hosts: []string{"h1"}} },
		want: []string{"Config.Environments[", "is not an environment name"},
	},
	{
		name:    "Environment.Name",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.Name = v }) },
		restart: true,
		want:    []string{`Config.Environments["development"].Name`},
		literal: []string{"semicolon", "command substitution", "command substitution without spaces", "backticks", "pipe", "and", "single quotes", "double quotes", "spaces", "dot-dot", "git option", "leading dash", "empty", "100 KB", "not UTF-8"},
	},
	{
		name:    "Environment.DeploymentType",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.DeploymentType = v }) },
		restart: true,
		want:    []string{`Config.Environments["development"].DeploymentType`},
		literal: []string{"empty"},
	},
	{
		name:     "MAGEFAB_ENV",
		variable: true,
		give:     func(g *given, v string) { g.env[EnvVar] = v },
		want:     []string{"MAGEFAB_ENV="},
	},
	{
		name:    "Environment.Hosts",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.Hosts = []string{v} }) },
		restart: true,
		want:    []string{`Config.Environments["development"].Hosts[0]`},
		extra:   hostUsers,
		check:   checkLoginUser,
	},
	{
		// The hosts are given, so the load balancer is not asked.
		name:    "Environment.LoadBalancer",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.LoadBalancer = v }) },
		restart: true,
		want:    []string{`Config.Environments["development"].LoadBalancer`, "not a Classic Load Balancer name"},
		literal: []string{"empty"},
		// elb.ValidateName is the one rule.
		extra:  []nastyValue{{"32 characters", strings.Repeat("w", 32)}, {"inner hyphens", "web-lb-1"}},
		refuse: []nastyValue{{"33 characters", strings.Repeat("w", 33)}, {"trailing hyphen", "web-"}, {"underscore", "web_lb"}},
	},
	{
		name:     "MAGEFAB_HOSTS",
		variable: true,
		give:     func(g *given, v string) { g.env[HostsVar] = v },
		restart:  true,
		want:     []string{"MAGEFAB_HOSTS="},
		extra:    hostUsers,
		check:    checkLoginUser,
	},
	{
		name: "Unit",
		give: func(g *given, v string) { g.cfg.Unit = v },
		want: []string{"Config.Unit"},
	},
	{
		name: "Path",
		give: func(g *given, v string) { g.cfg.Path = v },
		want: []string{"Config.Path"},
		skip: []string{"empty"}, // /var/webapps/<Unit>, out of the test's reach
		// release.ValidateDeployPath is the one rule; the layout's old copy
		// let these through.
		refuse: []nastyValue{{"tilde", "~/CANARYNAME"}, {"C1 control", "app\u0085touch CANARY"}, {"not ASCII", "app-café"}},
	},
	{
		name:    "Environment.PathSuffix",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.PathSuffix = v }) },
		restart: true,
		want:    []string{`Config.Environments["development"].PathSuffix`},
		literal: []string{"empty", "leading dash"},
	},
	{
		name:    "ReleasesRoot",
		give:    func(g *given, v string) { g.cfg.ReleasesRoot = v },
		restart: true,
		want:    []string{"Config.ReleasesRoot", "give a single plain name"},
		literal: []string{"empty"},
		refuse:  []nastyValue{{"backslash", `a\b`}, {"colon", "a:b"}, {"dot", "."}},
	},
	{
		name: "ReleaseDirs",
		give: func(g *given, v string) { g.cfg.ReleaseDirs = []string{v, "b"} },
		want: []string{"Config.ReleaseDirs[0]"},
	},
	{
		name:    "CurrentLink",
		give:    func(g *given, v string) { g.cfg.CurrentLink = v },
		restart: true,
		want:    []string{"Config.CurrentLink"},
		literal: []string{"empty"},
	},
	{
		name:    "Virtualenv",
		give:    func(g *given, v string) { g.cfg.Virtualenv = v },
		restart: true,
		want:    []string{"Config.Virtualenv"},
		literal: []string{"empty"},
	},
	{
		name: "SCM",
		give: func(g *given, v string) { g.cfg.SCM = v },
		want: []string{"Config.SCM"},
		// A plain path that is no repository: the hosts' clone fails.
		literal: []string{"semicolon", "pipe", "and", "single quotes", "spaces", "dot-dot"},
		refuse:  []nastyValue{{"ext transport", "ext::sh -c touch% CANARY"}, {"ssh option host", "ssh://-oProxyCommand=touch%20CANARY/x"}, {"scp option host", "git@-oProxyCommand=touch:x"}},
		hostErr: "git clone of",
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			if err == nil || !strings.Contains(err.Error(), v) {
				t.Errorf("error = %v, want it to name the URL %q", err, v)
			}
		},
	},
	{
		name:    "Remote",
		give:    func(g *given, v string) { g.cfg.Remote = v },
		dry:     true,
		want:    []string{"Config.Remote"},
		literal: []string{"empty"},
	},
	{
		name:    "Environment.Branch",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.Branch = v }) },
		dry:     true,
		want:    []string{`Config.Environments["development"].Branch`},
		literal: []string{"empty"},
	},
	{
		name:    "Environment.DefaultRevision",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.DefaultRevision = v }) },
		dry:     true,
		want:    []string{`Config.Environments["development"].DefaultRevision`},
		literal: []string{"empty"},
	},
	requirementField("PipRequirements", func(g *given, vs []string) { g.cfg.PipRequirements = vs }, "Config.PipRequirements[0]"),
	requirementField("PipRequirementsDev", func(g *given, vs []string) { g.cfg.PipRequirementsDev = vs }, "Config.PipRequirementsDev[0]"),
	requirementField("PipRequirementsProduction", func(g *given, vs []string) { g.cfg.PipRequirementsProduction = vs }, "Config.PipRequirementsProduction[0]"),
	requirementField("Environment.Requirements", func(g *given, vs []string) { g.dev(func(e *Environment) { e.Requirements = vs }) }, `Config.Environments["development"].Requirements[0]`),
	{
		name: "Settings (maint:enable)",
		give: func(g *given, v string) {
			g.cfg.Settings = v
			if v != "" {
				g.files = map[string]string{v: "MAINTENANCE_MODE = False\n"}
			}
			g.run = func(ctx context.Context, head string) error {
				if err := deployHead(ctx, head); err != nil {
					return err
				}
				return Maint{}.Enable(ctx)
			}
		},
		want:    []string{"Config.Settings"},
		literal: append([]string{"empty"}, fileValues...),
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			if v == "" {
				v = defaultSettings
			}
			live := filepath.Join(p.home, p.path, defaultReleasesRoot, defaultCurrentLink, v)
			if b, _ := os.ReadFile(live); string(b) != "MAINTENANCE_MODE = True\n" {
				t.Errorf("%s holds %q after maint:enable, want MAINTENANCE_MODE = True", live, b)
			}
		},
	},
	{
		name: "Environment.Crontab",
		give: func(g *given, v string) {
			g.dev(func(e *Environment) { e.Crontab = v })
			g.files = map[string]string{v: "# no jobs\n"}
		},
		want:    []string{`Config.Environments["development"].Crontab`},
		literal: append([]string{"empty"}, fileValues...),
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			if v == "" {
				return
			}
			for _, c := range calls {
				if c[0] == "crontab" && strings.HasSuffix(c[len(c)-1], "/"+v) {
					return
				}
			}
			t.Errorf("crontab was not given the file %q: the calls were %q", v, calls)
		},
	},
	{
		name:    "Environment.Crontab, missing from the release",
		give:    func(g *given, v string) { g.dev(func(e *Environment) { e.Crontab = v }) },
		want:    []string{`Config.Environments["development"].Crontab`},
		literal: fileValues,
		skip:    []string{"empty"}, // no crontab
		hostErr: "is missing from release",
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			if err == nil || !strings.Contains(err.Error(), "crontab file "+v+" is missing") {
				t.Errorf("error = %v, want it to name the crontab file %q", err, v)
			}
		},
	},
	{
		name:     "Fixtures",
		giveList: func(g *given, vs []string) { g.cfg.Fixtures = vs },
		want:     []string{"Config.Fixtures[0]"},
		literal:  fileValues,
		check:    checkFixture,
	},
	{
		name:     "Environment.Fixtures",
		giveList: func(g *given, vs []string) { g.dev(func(e *Environment) { e.Fixtures = vs }) },
		want:     []string{`Config.Environments["development"].Fixtures[0]`},
		literal:  fileValues,
		check:    checkFixture,
	},
	{
		name: "PackageInstallScripts",
		giveList: func(g *given, vs []string) {
			g.cfg.PackageInstallScripts = vs
			g.files = fileNamed(vs, installScript)
		},
		want:    []string{"Config.PackageInstallScripts[0]"},
		literal: fileValues,
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			wantCall(t, calls, "script", "./"+v)
		},
	},
	{
		name: "PrivateRequirements",
		dry:  true,
		giveList: func(g *given, vs []string) {
			g.cfg.PrivateRequirements = vs
			g.files = fileNamed(vs, "# no private packages\n")
		},
		want:    []string{"Config.PrivateRequirements[0]"},
		literal: fileValues,
	},
	{
		// Read here only: a dry run shows it was found.
		name: "Celeryd",
		dry:  true,
		give: func(g *given, v string) {
			g.cfg.Celeryd = v
			g.files = map[string]string{v: "CHDIR={{.Current}}\n"}
		},
		want:    []string{"Config.Celeryd"},
		literal: append([]string{"empty"}, fileValues...),
	},
	{
		name: "RootDir (pip:setup)",
		give: func(g *given, v string) {
			g.cfg.RootDir = filepath.Join(g.cfg.RootDir, "missing") + "/" + v
			g.run = func(ctx context.Context, _ string) error { return Pip{}.Setup(ctx) }
		},
		want:    []string{"Config.RootDir"},
		literal: []string{"semicolon", "pipe", "and", "single quotes", "spaces", "dot-dot", "git option", "leading dash", "empty"},
		hostErr: "cannot enter",
		check: func(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
			if err == nil || !strings.Contains(err.Error(), v) {
				t.Errorf("error = %v, want it to name the directory ending in %q", err, v)
			}
		},
	},
	{
		name:    "Python",
		give:    func(g *given, v string) { g.cfg.Python = v },
		want:    []string{"Config.Python"},
		skip:    []string{"empty"}, // the host's own python3
		literal: []string{"dot-dot"},
		hostErr: "not found on the host",
	},
	{
		name:    "DeployUser",
		give:    func(g *given, v string) { g.cfg.DeployUser = v },
		restart: true,
		want:    []string{"Config.DeployUser"},
		literal: []string{"empty"},
	},
	{
		name:    "DeployGroup",
		give:    func(g *given, v string) { g.cfg.DeployGroup = v },
		restart: true,
		want:    []string{"Config.DeployGroup"},
		literal: []string{"empty"},
	},
	{
		name:    "SSH.User",
		give:    func(g *given, v string) { g.cfg.SSH.User = v },
		restart: true,
		want:    []string{"Config.SSH.User"},
		literal: []string{"empty"},
	},
	{
		name:     "MAGEFAB_TAG",
		variable: true,
		give: func(g *given, v string) {
			g.env[EnvVar], g.env[TagVar] = envProduction, v
			g.cfg.VersionPattern = "^v"
		},
		want: []string{"MAGEFAB_TAG", "release: invalid tag"},
	},
	{
		name:     "MAGEFAB_YES",
		variable: true,
		give: func(g *given, v string) {
			g.env[EnvVar], g.env[YesVar] = envProduction, v
			g.run = func(ctx context.Context, _ string) error { return Deploy{}.Head(ctx) }
		},
		want: []string{"MAGEFAB_YES="},
	},
	boolField(SkipTestsVar), boolField(DryRunVar), boolField(ReinstallVar),
	{
		name:     "MAGEFAB_NO_AUTO_ROLLBACK",
		variable: true,
		give: func(g *given, v string) {
			g.env[NoAutoRollbackVar] = v
			g.cfg.VersionURL = "http://127.0.0.1:1/version"
		},
		want: []string{"MAGEFAB_NO_AUTO_ROLLBACK="},
	},
	{
		name:     "MAGEFAB_PARALLEL",
		variable: true,
		give:     func(g *given, v string) { g.env[ParallelVar] = v },
		want:     []string{"MAGEFAB_PARALLEL="},
	},
	{
		name:     "MAGEFAB_LOCK_WAIT",
		variable: true,
		give:     func(g *given, v string) { g.env[LockWaitVar] = v },
		want:     []string{"MAGEFAB_LOCK_WAIT="},
	},
	{
		name:     "MAGEFAB_LOCK_LEASE",
		variable: true,
		give:     func(g *given, v string) { g.env[LockLeaseVar] = v },
		want:     []string{"MAGEFAB_LOCK_LEASE="},
	},
}

func boolField(name string) inputField {
	return inputField{
		name:     name,
		variable: true,
		give:     func(g *given, v string) { g.env[name] = v },
		want:     []string{name + "="},
	}
}

// hostUsers are host specs whose user holds what a shell would run. The
// user is only ever the SSH login name: no shell sees it.
var hostUsers = []nastyValue{
	{"user with command substitution", "$(touch${IFS}CANARY)@h1"},
	{"user with backticks", "`touch${IFS}CANARY`@h1"},
	{"user with semicolon", "u;touch${IFS}CANARY@h1"},
}

func checkLoginUser(t *testing.T, p *hostProject, v string, err error, calls [][]string) {
	if v == "" {
		return
	}
	user, _, _ := strings.Cut(v, "@h1")
	if !slices.Contains(p.srv.Users(), user) {
		t.Errorf("the host saw the users %q, want %q among them", p.srv.Users(), user)
	}
}

// hintWords are the words with which an error says what is allowed or
// what to do.
var hintWords = []string{"give", "use ", "set ", "such as", "e.g.", "rename", "write", "choose", "unset", "move", "want", "only"}

// TestBadInput tries every user-supplied value with values that would run
// a command if a shell read them unquoted, and with values that are not
// names at all. Each must be refused before anything runs on a host, with
// an error that names the setting and says what to give instead, or be
// taken literally: quoted wherever it reaches the host's shell, and whole
// where it arrives. No case may create its canary file.
func TestBadInput(t *testing.T) {
	p := newHostProject(t)
	ctx := context.Background()
	n := 0
	for _, f := range inputFields {
		var together []caseValue
		for _, nv := range slices.Concat(nastyValues, f.extra, f.refuse) {
			literal := slices.Contains(f.literal, nv.name) || slices.Contains(f.extra, nv)
			if slices.Contains(f.skip, nv.name) || f.variable && (nv.v == "" || strings.IndexByte(nv.v, 0) >= 0) {
				continue // a variable cannot hold NUL; empty is unset, as in every other case
			}
			n++
			if literal && f.giveList != nil {
				together = append(together, caseValue{n, nv})
				continue
			}
			t.Run(f.name+"/"+nv.name, func(t *testing.T) {
				p.runCase(t, ctx, f, []caseValue{{n, nv}}, literal)
			})
		}
		if len(together) > 0 {
			t.Run(f.name+"/literal values together", func(t *testing.T) {
				p.runCase(t, ctx, f, together, true)
			})
		}
	}
}

// caseValue is a nastyValue and the number of its case, which names its
// canary file and its deploy root.
type caseValue struct {
	n int
	nastyValue
}

// runCase gives the values (several only for a setting that holds a list)
// to the field, runs the target and checks the outcome of each value.
func (p *hostProject) runCase(t *testing.T, ctx context.Context, f inputField, values []caseValue, literal bool) {
	var vs, canaries []string
	for _, cv := range values {
		canary := filepath.Join(p.home, fmt.Sprintf("canary-%d", cv.n))
		canaries = append(canaries, canary, filepath.Join(os.Getenv("HOME"), filepath.Base(canary)))
		vs = append(vs, strings.NewReplacer("CANARYNAME", filepath.Base(canary), "CANARY", canary).Replace(cv.v))
	}
	p.path = fmt.Sprintf("app-%d", values[0].n)
	p.out.Reset()
	g := given{cfg: p.config(p.path), env: map[string]string{EnvVar: envDevelopment}, run: deployHead}
	if f.giveList != nil {
		f.giveList(&g, vs)
	} else {
		f.give(&g, vs[0])
	}
	if literal && f.dry {
		g.env[DryRunVar] = "1"
	}
	if literal && f.restart {
		g.run = func(ctx context.Context, _ string) error { return Maint{}.Restart(ctx) }
	}
	for k, val := range g.env {
		t.Setenv(k, val)
	}
	head := p.head
	delete(g.files, "")
	if literal && len(g.files) > 0 {
		head = p.commitFiles(t, g.files)
	}
	configure(t, g.cfg)
	resetSelection()
	before, mark := len(p.srv.Commands()), p.toolsLogSize()
	err := g.run(ctx, head)
	cmds := p.srv.Commands()[before:]
	for _, c := range canaries {
		if _, serr := os.Lstat(c); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s=%s made a command run: %s exists (target error: %v)", f.name, shown(strings.Join(vs, ", ")), c, err)
			os.Remove(c)
		}
	}
	if !literal {
		checkRefused(t, f, vs[0], err, cmds)
		return
	}
	switch {
	case f.hostErr == "" && err != nil:
		t.Errorf("%s=%s: the target failed: %v\n%s", f.name, shown(strings.Join(vs, ", ")), err, p.out)
	case f.hostErr != "" && (err == nil || !strings.Contains(err.Error(), f.hostErr)):
		t.Errorf("%s=%s: error = %v, want one containing %q", f.name, shown(vs[0]), err, f.hostErr)
	}
	calls := p.toolCalls(mark)
	for i, v := range vs {
		if bad, _ := unquotedUses(cmds, v); len(bad) > 0 {
			t.Errorf("%s=%s (%s) reached the host unquoted:\n%s", f.name, shown(v), values[i].name, strings.Join(bad, "\n"))
		}
		if f.check != nil {
			f.check(t, p, v, err, calls)
		}
	}
}

// checkRefused checks the error of a refused value: it names the setting,
// shows the value safely and briefly, says what to do, and came before any
// command ran on the host.
func checkRefused(t *testing.T, f inputField, v string, err error, cmds []string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s=%s: the target succeeded, want an error", f.name, shown(v))
		return
	}
	msg := err.Error()
	for _, w := range f.want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s=%s: error %q does not name the setting (%q)", f.name, shown(v), msg, w)
		}
	}
	if !slices.ContainsFunc(hintWords, func(w string) bool { return strings.Contains(msg, w) }) {
		t.Errorf("%s=%s: error %q does not say what to do", f.name, shown(v), msg)
	}
	if len(msg) > 2000 {
		t.Errorf("%s=%s: error is %d bytes long: %.300q...", f.name, shown(v), len(msg), msg)
	}
	if v != "" && strings.Contains(msg, v) && (!utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl)) {
		t.Errorf("%s=%s: error %q holds the value unquoted", f.name, shown(v), msg)
	}
	if len(cmds) > 0 {
		t.Errorf("%s=%s: refused (%v), but %d command(s) ran on the host first: %.500q", f.name, shown(v), err, len(cmds), cmds)
	}
}

// TestBadTagNamesInTheRepository covers release names that come from the
// repository's tags rather than from the user: git allows '$', quotes and
// ';' in a tag, and a tag pushed by anyone with access must not run on the
// hosts when magefab picks it as a release name.
func TestBadTagNamesInTheRepository(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, p *hostProject, canary string, before int, err error, wantErr string) {
		t.Helper()
		if _, serr := os.Lstat(canary); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("a tag made a command run: %s exists (target error: %v)", canary, err)
		}
		cmds := p.srv.Commands()[before:]
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("target failed: %v\n%s", err, p.out)
		case wantErr != "":
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("error = %v, want one containing %q", err, wantErr)
			}
			if len(cmds) > 0 {
				t.Errorf("refused, but %d command(s) ran on the host first", len(cmds))
			}
		}
		for _, c := range cmds {
			if strings.Contains(hostScript(c), "touch${IFS}") {
				t.Errorf("the tag reached the host: %.300q", hostScript(c))
			}
		}
	}
	setup := func(t *testing.T, tag string) (*hostProject, string) {
		p := newHostProject(t)
		canary := filepath.Join(p.home, "canary")
		tag = strings.ReplaceAll(tag, "CANARY", canary)
		git(t, p.clone, "tag", "-a", "-m", "bad", tag, p.head)
		git(t, p.clone, "push", "-q", "origin", tag)
		p.path = "app"
		return p, tag
	}

	t.Run("deploy:tag of it with a VersionPattern it matches", func(t *testing.T) {
		p, tag := setup(t, "v2$(touch${IFS}CANARY)")
		cfg := p.config(p.path)
		cfg.VersionPattern = "^v"
		configure(t, cfg)
		t.Setenv(EnvVar, envProduction)
		before := len(p.srv.Commands())
		err := Deploy{}.Tag(ctx, tag)
		check(t, p, filepath.Join(p.home, "canary"), before, err, "contains '$'")
	})

	t.Run("the latest release with a VersionPattern it matches", func(t *testing.T) {
		p, _ := setup(t, "v9$(touch${IFS}CANARY)")
		cfg := p.config(p.path)
		cfg.VersionPattern = "^v"
		configure(t, cfg)
		t.Setenv(EnvVar, envProduction)
		prompts = &prompter{In: strings.NewReader("n\n"), Out: io.Discard, IsTerminal: func() bool { return true }}
		before := len(p.srv.Commands())
		err := Deploy{}.Head(ctx)
		check(t, p, filepath.Join(p.home, "canary"), before, err, "")
		if !strings.Contains(p.out.String(), "v0.1.0 is now deployed to PRODUCTION") {
			t.Errorf("the latest valid release, v0.1.0, was not deployed:\n%s", p.out)
		}
	})

	t.Run("git describe of an untagged commit", func(t *testing.T) {
		p, _ := setup(t, "x$(touch${IFS}CANARY)")
		head := p.commitFiles(t, map[string]string{"later.txt": "later\n"})
		configure(t, p.config(p.path))
		t.Setenv(EnvVar, envDevelopment)
		before := len(p.srv.Commands())
		err := Deploy{}.Commit(ctx, head)
		check(t, p, filepath.Join(p.home, "canary"), before, err, "")
		if want := "deploying it as " + head[:7]; !strings.Contains(p.out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, p.out)
		}
	})
}

// TestUnquotedUses checks the checker of TestBadInput on scripts whose
// quoting is known.
func TestUnquotedUses(t *testing.T) {
	t.Parallel()
	v := "a;touch x"
	for _, c := range []struct {
		script string
		bad    bool
	}{
		{"f=" + sshx.Quote(v), false},
		{`die "file ` + v + ` is missing"`, false},
		{`step "$(cat "$x") ` + v + `"`, false},
		{"echo " + v, true},
		{`echo "a" ` + v, true},
		{`printf '%s' "x"; echo ` + v, true},
	} {
		cmd := "exec /bin/sh -c " + sshx.Quote("exec 3<&0; setsid /bin/sh -c "+sshx.Quote(c.script)+" <&3 3<&- & p=$!; wait $p")
		if got := hostScript(cmd); got != c.script {
			t.Errorf("hostScript(wrapped %q) = %q", c.script, got)
		}
		bad, uses := unquotedUses([]string{cmd}, v)
		if uses != 1 || (len(bad) > 0) != c.bad {
			t.Errorf("unquotedUses(%q) = %q, %d uses; want bad %v", c.script, bad, uses, c.bad)
		}
	}
	if bad, _ := unquotedUses([]string{`die "x $y` + "$(id)" + `"`}, "$(id)"); len(bad) != 1 {
		t.Errorf("$(id) in double quotes was not reported")
	}
	if bad, _ := unquotedUses([]string{"command -v ../x"}, "../x"); len(bad) != 0 {
		t.Errorf("a value that needs no quotes was reported bare: %q", bad)
	}
}
