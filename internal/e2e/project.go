// Package e2e builds the pieces end-to-end tests deploy: a small Python web
// app in a git repository with a magefile that uses magetargets, its bare
// remote under /srv/git, a wheelhouse built offline, an init script, and
// the real mage binary to run the targets with.
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/wheel"
	"github.com/magefab/magefab/sshx"
)

// AppPy is the test app: a stdlib HTTP server that answers /version with
// the commit it runs from and imports a package from the wheelhouse (so a
// broken virtualenv shows). A file named FAIL_START in its directory makes
// it exit at once, like an app that cannot start. A release exported
// without .git (Capistrano's) gives its commit in REVISION. A port in use
// is tried again for 5 s, as gunicorn does.
const AppPy = `import errno, http.server, os, subprocess, sys, time
import magefab_testdep

here = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(here, "FAIL_START")):
    sys.exit("FAIL_START present: refusing to start")
revision = os.path.join(here, "REVISION")  # Capistrano exports the tree without .git
if os.path.exists(revision):
    with open(revision) as f:
        sha = f.read().strip()
else:
    sha = subprocess.check_output(["git", "-c", "safe.directory=*", "rev-parse", "HEAD"], cwd=here).decode().strip()
if os.path.exists(os.path.join(here, "WRONG_VERSION")):
    sha = "0" * 40  # starts, but serves something else: a stale build, a bad proxy

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (sha + "\n").encode() if self.path == "/version" else b"hello from " + magefab_testdep.NAME.encode() + b"\n"
        self.send_response(200 if self.path in ("/", "/version") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

# Like gunicorn, wait a moment for a port still held by the app being
# stopped, which a busy host may take a little longer to release.
http.server.ThreadingHTTPServer.allow_reuse_address = True
for attempt in range(50):
    try:
        server = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
        break
    except OSError as e:
        if e.errno != errno.EADDRINUSE or attempt == 49:
            raise
        print("port in use; retrying in 0.1s", file=sys.stderr, flush=True)
        time.sleep(0.1)
server.serve_forever()
`

// AppStart is the command InitScript starts AppPy with.
const AppStart = `env/bin/python app.py "$addr" "$PORT"`

// InitScript returns /etc/init.d/<unit> for a test app (start, stop,
// restart, status) that listens on port: start runs the shell command
// start (AppStart for AppPy) in the live release dir current with $addr
// and $PORT set, and waits until readyPath answers. current is "" for
// magefab's /var/webapps/<unit>/releases/current. Each fleet host has its
// own /var/webapps, where the pid file and the log live, and binds the app
// to its own address (from /run/fleet/host).
func InitScript(unit string, port int, start, readyPath, current string) string {
	if current == "" {
		current = "$ROOT/releases/current"
	}
	return fmt.Sprintf(initScript, unit, port, start, readyPath, current)
}

const initScript = `#!/bin/sh
# test app init script: start | stop | restart | status
UNIT=%[1]s
PORT=%[2]d
ROOT=/var/webapps/$UNIT
CURRENT=%[5]s
. /run/fleet/host
PIDFILE=$ROOT/app.pid
LOG=$ROOT/app.log
running() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -r "/proc/$pid/stat" ] || return 1
  # a pid file outlives its process, and the pid may be another
  # process's by now: only the app, running in this unit's tree, is ours
  case $(readlink "/proc/$pid/cwd") in "$ROOT"/*) ;; *) return 1 ;; esac
  # a zombie waiting for its reaper counts as stopped
  ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"
}
answers() {
  "$CURRENT/env/bin/python" -c "import urllib.request; urllib.request.urlopen('http://$addr:$PORT%[4]s', timeout=1)" 2>/dev/null
}
start() {
  # a host whose $ROOT/slow-restart holds "DIR SECONDS" takes that much
  # longer to start the release in DIR
  if [ -e "$ROOT/slow-restart" ]; then
    read -r slowdir slowsecs <"$ROOT/slow-restart"
    [ "$(readlink "$CURRENT")" != "$slowdir" ] || sleep "$slowsecs"
  fi
  # like start-stop-daemon --start: a running app is left alone (a start
  # that outlived its stopped restart must not take over the pid file)
  if running; then echo "$UNIT is already running"; return 0; fi
  # a host whose $ROOT/fail-restart names the live release dir cannot start it
  if [ -e "$ROOT/fail-restart" ] && [ "$(readlink "$CURRENT")" = "$(cat "$ROOT/fail-restart")" ]; then
    echo "$UNIT cannot start release $(cat "$ROOT/fail-restart") here" >&2; exit 1
  fi
  cd "$CURRENT" || { echo "no current release" >&2; exit 1; }
  setsid %[3]s >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  i=0
  while [ $i -lt 100 ]; do
    answers && return 0
    running || { echo "$UNIT did not start:" >&2; tail -n 3 "$LOG" >&2; exit 1; }
    sleep 0.1; i=$((i+1))
  done
  echo "$UNIT does not answer on $addr:$PORT" >&2; exit 1
}
stop() {
  if running; then
    kill "$(cat "$PIDFILE")"
    i=0
    while running && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    running && kill -9 "$(cat "$PIDFILE")"
  fi
  rm -f "$PIDFILE"
}
case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) running ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
`

// Project is a test app repository with its magefile, its bare remote,
// its wheelhouse and its init script.
type Project struct {
	Unit    string
	Dir     string // the app's repository, with magefile.go and go.mod
	Remote  string // the bare repository the hosts clone from
	Wheels  string // the wheelhouse
	Port    int    // where the app listens on each host
	Fleet   fleettest.Fleet
	mage    string // the mage binary
	hosts   []string
	prodEnv string
	gitEnv  []string
	cleanup []func()

	VersionPath string // where the app answers its commit: "" means /version
}

var mageBin struct {
	once sync.Once
	path string
	err  error
}

// repoRoot is the root of the magefab module.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Mage builds the mage binary once per test process.
func Mage(t testing.TB) string {
	t.Helper()
	mageBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "magefab-mage")
		if err != nil {
			mageBin.err = err
			return
		}
		mageBin.path = filepath.Join(dir, "mage")
		cmd := exec.Command("go", "build", "-o", mageBin.path, "github.com/magefile/mage")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			mageBin.err = fmt.Errorf("building mage: %v\n%s", err, out)
		}
	})
	if mageBin.err != nil {
		t.Fatal(mageBin.err)
	}
	return mageBin.path
}

// RemoveMage removes the mage binary Mage built and its cache of compiled
// magefiles; a test package's TestMain calls it once every test is done.
func RemoveMage() {
	if mageBin.path != "" {
		os.RemoveAll(filepath.Dir(mageBin.path))
	}
}

// NewProject makes the app repository (committed and pushed to a bare
// remote under /srv/git that the deploy user owns), a wheelhouse with the
// app's one dependency, and /etc/init.d/<unit>. The config argument is Go
// code for the magetargets.Config literal's extra fields. Everything is
// removed when the test ends, including the app on every host.
//
// prodEnv is Go code for extra fields of the production Environment.
func NewProject(t *testing.T, f fleettest.Fleet, hosts []string, extraConfig string) *Project {
	return NewProjectWith(t, f, hosts, extraConfig, "", nil)
}

// NewProjectWith is NewProject with extra production Environment fields and
// extra files in the first commit.
func NewProjectWith(t *testing.T, f fleettest.Fleet, hosts []string, extraConfig, prodEnv string, extraFiles map[string]string) *Project {
	t.Helper()
	fleettest.RequireTool(t, "git", "git")
	b := make([]byte, 4)
	rand.Read(b)
	p := &Project{Unit: "e2e" + hex.EncodeToString(b), Fleet: f, hosts: hosts, prodEnv: prodEnv}
	p.Port = 8100 + int(b[0])%200*4 + int(b[1])%4
	p.Dir = t.TempDir()
	p.Remote = filepath.Join("/srv/git", p.Unit+".git")
	p.Wheels = filepath.Join("/srv", "magefab-wheels-"+p.Unit)
	p.mage = Mage(t)

	gitConfig := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(gitConfig, []byte("[safe]\n\tdirectory = *\n[user]\n\tname = Tess Tester\n\temail = tess@example.com\n[init]\n\tdefaultBranch = master\n"), 0o644)
	p.gitEnv = []string{"GIT_CONFIG_GLOBAL=" + gitConfig, "GIT_CONFIG_NOSYSTEM=1"}
	t.Cleanup(p.Cleanup)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(p.Wheels, 0o755))
	p.cleanup = append(p.cleanup, func() { os.RemoveAll(p.Wheels) })
	_, err := wheel.Build(p.Wheels, "magefab-testdep", "1.0", "NAME = 'magefab-testdep'\n")
	must(err)

	init := filepath.Join("/etc/init.d", p.Unit)
	must(os.WriteFile(init, []byte(InitScript(p.Unit, p.Port, AppStart, "/version", "")), 0o755))
	p.cleanup = append(p.cleanup, func() { os.Remove(init) })

	files := map[string]string{
		"app.py":           AppPy,
		"requirements.txt": "magefab-testdep==1.0\n",
		".gitignore":       "/env/\n*.pyc\n",
		"magefile.go":      p.magefile(hosts, extraConfig, prodEnv),
		"go.mod":           p.goMod(),
	}
	for name, body := range extraFiles {
		files[name] = body
	}
	for name, body := range files {
		must(os.MkdirAll(filepath.Dir(filepath.Join(p.Dir, name)), 0o755))
		must(os.WriteFile(filepath.Join(p.Dir, name), []byte(body), 0o755))
	}
	p.publish(t, "the app")
	return p
}

// publish adds magefab's go.sum to the project's files, commits them as
// its first commit and pushes it to a new bare remote that the deploy
// user owns (removed when the test ends).
func (p *Project) publish(t testing.TB, msg string) {
	t.Helper()
	sum, err := os.ReadFile(filepath.Join(repoRoot(), "go.sum"))
	if err == nil {
		err = os.WriteFile(filepath.Join(p.Dir, "go.sum"), sum, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.cleanup = append(p.cleanup, func() { os.RemoveAll(p.Remote) })
	p.Git(t, "init", "-q", "--bare", p.Remote)
	if out, err := exec.Command("chown", "-R", "deploy:deploy", p.Remote).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", p.Remote, err, out)
	}
	p.Git(t, "init", "-q")
	p.Git(t, "remote", "add", "origin", p.Remote)
	p.Git(t, "add", ".")
	p.Git(t, "commit", "-q", "-m", msg)
	p.Git(t, "push", "-q", "-u", "origin", "master")
}

func (p *Project) magefile(hosts []string, extra, prodEnv string) string {
	return Magefile(p.Unit, p.Remote, p.Wheels, p.Fleet.ConfigFile, hosts, prodEnv, extra)
}

// Magefile is the magefile of a test app unit that the hosts clone from
// scm, installing its requirements offline from the wheelhouse wheels and
// reaching the hosts through the ssh_config file sshConfig: production is
// hosts (with prodEnv, Go code for more Environment fields), development
// the first of them, and extra is Go code for more Config fields.
func Magefile(unit, scm, wheels, sshConfig string, hosts []string, prodEnv, extra string) string {
	return fmt.Sprintf(`//go:build mage

package main

import (
	// mage:import
	"github.com/magefab/magefab/magetargets"
	"github.com/magefab/magefab/release/notify"
)

var _ notify.Notifier // for configurations that set Notifiers

func init() {
	magetargets.Configure(magetargets.Config{
		Unit:              %q,
		SCM:               %q,
		Python:            "/usr/bin/python3",
		PipRequirements:   []string{"requirements.txt"},
		PipInstallCommand: "pip install --no-index --find-links %s",
		SSH:               magetargets.SSH{ConfigFile: %q},
		Environments: map[string]magetargets.Environment{
			"production":  {Hosts: %#v, %s},
			"development": {Hosts: %#v},
		},
		%s
	})
}
`, unit, scm, wheels, sshConfig, hosts, prodEnv, hosts[:1], extra)
}

func (p *Project) goMod() string {
	return fmt.Sprintf("module example.com/%s\n\ngo 1.26\n\nrequire github.com/magefab/magefab v0.0.0\n\nreplace github.com/magefab/magefab => %s\n", p.Unit, repoRoot())
}

// Git runs git in the project and returns its output.
func (p *Project) Git(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit changes a file, commits and pushes, and returns the new SHA.
func (p *Project) Commit(t testing.TB, msg string) string {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(p.Dir, "CHANGES"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, msg)
	f.Close()
	p.Git(t, "add", "CHANGES")
	p.Git(t, "commit", "-q", "-m", msg)
	p.Git(t, "push", "-q", "origin", "master")
	return p.Git(t, "rev-parse", "HEAD")
}

// SetConfig rewrites the magefile with extra Config fields (Go code) and
// commits it.
func (p *Project) SetConfig(t testing.TB, extraConfig string) {
	t.Helper()
	p.AddFiles(t, "configure", map[string]string{"magefile.go": p.magefile(p.hosts, extraConfig, p.prodEnv)})
}

// AddFiles writes files, commits and pushes them, and returns the SHA.
func (p *Project) AddFiles(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(p.Dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p.Git(t, "add", name)
	}
	p.Git(t, "commit", "-q", "-m", msg)
	p.Git(t, "push", "-q", "origin", "master")
	return p.Git(t, "rev-parse", "HEAD")
}

// Tag tags HEAD and pushes the tag.
func (p *Project) Tag(t testing.TB, tag string) {
	t.Helper()
	p.Git(t, "tag", "-a", "-m", tag, tag)
	p.Git(t, "push", "-q", "origin", tag)
}

// Result is a finished mage run.
type Result struct {
	Out  string
	Err  error
	Code int
	Took time.Duration
}

// env is the environment of a mage run in the project. Mage's compiled
// magefiles live in a cache of this test process, and MAGEFILE_HASHFAST
// makes mage reuse them instead of regenerating mage_output_file.go in the
// project on every run: two runs at once in one project would otherwise
// race on that file. Each project's magefile names its own random unit, so
// a cached binary is never one built against another version of magefab.
// GOCACHE stays this process's build cache even when a test gives mage an
// XDG_CACHE_HOME of its own, where go would otherwise put a new, empty
// one and compile every dependency of the magefile again. The magefiles
// are linked without DWARF and symbol tables (-s -w): every project links
// one, and linking took about 7% of the test run's CPU time; a panic's
// stack trace still names files and lines.
func (p *Project) env(extra []string) []string {
	env := append(os.Environ(), p.gitEnv...)
	env = append(env, "MAGEFILE_CACHE="+filepath.Join(filepath.Dir(p.mage), "cache"), "MAGEFILE_HASHFAST=1", "GOFLAGS=-mod=mod '-ldflags=-s -w'")
	if c := goCache(); c != "" {
		env = append(env, "GOCACHE="+c)
	}
	return append(env, extra...)
}

// goCache is the go command's build cache, as `go env GOCACHE` says.
var goCache = sync.OnceValue(func() string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
})

// Run runs the real mage binary in the project with args, with the given
// environment variables added, and no terminal on stdin.
func (p *Project) Run(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	return p.RunOn(t, "", env, args...)
}

// Start starts mage in its own process group (as a terminal's foreground
// job) and returns it with its live output.
func (p *Project) Start(t testing.TB, env []string, args ...string) (*exec.Cmd, *sshx.SyncWriter) {
	t.Helper()
	cmd := exec.Command(p.mage, args...)
	cmd.Dir = p.Dir
	cmd.Env = p.env(env)
	out := &sshx.SyncWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// MustRun is Run that fails the test unless mage succeeds.
func (p *Project) MustRun(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	r := p.Run(t, env, args...)
	if r.Err != nil {
		t.Fatalf("mage %s: %v\n%s", strings.Join(args, " "), r.Err, r.Out)
	}
	return r
}

// Version asks the app on a fleet host for the commit it serves.
func (p *Project) Version(addr string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	path := p.VersionPath
	if path == "" {
		path = "/version"
	}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d%s", addr, p.Port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// Cleanup stops the app on every host and removes what NewProject made.
func (p *Project) Cleanup() {
	for _, h := range p.Fleet.Hosts {
		exec.Command("ssh", "-F", p.Fleet.ConfigFile, h,
			"sudo -n /etc/init.d/"+p.Unit+" stop; sudo -n rm -rf /var/webapps/"+p.Unit).Run()
	}
	for i := len(p.cleanup) - 1; i >= 0; i-- {
		p.cleanup[i]()
	}
	p.cleanup = nil
}
