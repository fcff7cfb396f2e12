// Package demo runs magefab's main job on this machine with nothing set up:
// an embedded SSH host on loopback, the Tornado example app
// (examples/tornado) in a fresh git repository, with its requirements
// packed as wheels from the local Python, and the real targets deploying
// it, rolling it back and switching maintenance mode, printing what a user
// would see.
package demo

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/magefab/magefab/examples"
	"github.com/magefab/magefab/internal/load"
	"github.com/magefab/magefab/internal/tty"
	"github.com/magefab/magefab/internal/wheel"
	"github.com/magefab/magefab/magetargets"
	"github.com/magefab/magefab/sshx/sshtest"
)

// slotScript starts and stops the example app's slots on the embedded
// host, as an init-style script does on a server: "start DIR SLOT" runs
// the app from the release dir DIR on its socket DIR/run/SLOT.sock (pid
// and log beside it) and waits until the socket is there or the app died;
// "stop DIR SLOT" sends TERM, which drains the app, and waits for it to
// exit. It lives in init.d/ of the host's home.
const slotScript = `#!/bin/sh
# init.d/%[1]s-slot start|stop DIR SLOT: the demo host's slots of the example app
dir=$2 slot=$3
pidf=$dir/run/$slot.pid sock=$dir/run/$slot.sock log=$dir/run/$slot.log
# running: the pid file's process lives and is the slot's (the pid may be
# another process's by now)
running() {
  [ -f "$pidf" ] && tr '\0' ' ' <"/proc/$(cat "$pidf")/cmdline" 2>/dev/null | grep -qF -- "$sock" &&
    ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$(cat "$pidf")/stat" 2>/dev/null
}
case $1 in
start)
  running && exit 0
  cd "$dir" || exit 1
  DEPLOYMENT_TYPE=PRODUCTION setsid env/bin/python app.py --unix "$sock" >>"$log" 2>&1 </dev/null &
  child=$!
  echo "$child" >"$pidf"
  i=0
  while [ ! -S "$sock" ]; do
    # the child this script started: until it execs, its command line is
    # this script's
    kill -0 "$child" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$child/stat" 2>/dev/null && [ $i -lt 600 ] ||
      { echo "slot $slot did not start:" >&2; tail -n 5 "$log" >&2; exit 1; }
    sleep 0.05; i=$((i+1))
  done ;;
stop)
  if running; then
    kill "$(cat "$pidf")"; i=0
    while running && [ $i -lt $((${MAGEFAB_DRAIN_TIMEOUT:-30} * 10)) ]; do sleep 0.1; i=$((i+1)); done
    running && kill -9 "$(cat "$pidf")"
  fi
  rm -f "$pidf" ;;
esac
`

// The example the demo deploys, examples/tornado: its unit and the
// requirement file its magefile installs everywhere.
const (
	exampleName = "tornado"
	exampleUnit = "hello"
	exampleReqs = "requirements/common.txt"
)

// Run runs the demo, printing to out. It removes everything it made.
func Run(ctx context.Context, out io.Writer) error {
	py, names, err := localRequirements()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "magefab-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	d := &demo{out: out, tmp: tmp, py: py, reqs: names, cleanup: func() {}}
	defer func() { d.cleanup() }()
	return d.run(ctx)
}

// Check says what the demo needs that this machine lacks: git, python3
// with venv and pip, and what the example app requires (Tornado), which
// the demo packs from the local Python into wheels.
func Check() error {
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("demo: git is not installed (Debian: apt-get install git)")
	}
	_, _, err := localRequirements()
	return err
}

// localRequirements returns the local Python and the projects the example
// app requires, or what is missing: python3 with venv and pip, or one of
// those projects.
func localRequirements() (*wheel.Python, []string, error) {
	if err := checkPython(); err != nil {
		return nil, nil, err
	}
	names, err := exampleRequirements()
	if err != nil {
		return nil, nil, err
	}
	py, err := wheel.LocalPython(python())
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	for _, name := range names {
		if _, err := py.Find(name); err != nil {
			return nil, nil, fmt.Errorf("demo: %w; the example app (examples/%s) needs it", err, exampleName)
		}
	}
	return py, names, nil
}

// exampleRequirements are the projects the example app requires.
func exampleRequirements() ([]string, error) {
	fsys, err := examples.FS(exampleName)
	if err != nil {
		return nil, err
	}
	b, err := fs.ReadFile(fsys, exampleReqs)
	if err != nil {
		return nil, err
	}
	return wheel.RequirementNames(string(b)), nil
}

func checkPython() error {
	dir, err := os.MkdirTemp("", "magefab-demo-venv")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command(python(), "-m", "venv", "--without-pip", filepath.Join(dir, "v")).CombinedOutput(); err != nil {
		return fmt.Errorf("demo: python3 with venv is needed (Debian: apt-get install python3-venv python3-pip): %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := exec.Command(python(), "-c", "import pip").Run(); err != nil {
		return fmt.Errorf("demo: pip for python3 is needed (Debian: apt-get install python3-pip)")
	}
	return nil
}

type demo struct {
	out     io.Writer
	tmp     string
	app     string // the app's repository
	home    string // the embedded host's home
	port    int
	srv     *sshtest.Server
	py      *wheel.Python // packs the example's requirements into wheels
	reqs    []string      // the projects the example app requires
	cleanup func()
}

// say prints a heading: bold on a terminal, plain in a pipe, a file, a
// CI log or with NO_COLOR set.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "\n%s\n", tty.Paint(tty.Color(d.out), tty.Bold, fmt.Sprintf(format, args...)))
}

func (d *demo) git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = d.app
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("demo: git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (d *demo) run(ctx context.Context) error {
	var err error
	if d.port, err = freePort(); err != nil {
		return err
	}
	d.home = filepath.Join(d.tmp, "host")
	d.app = filepath.Join(d.tmp, "app")
	remote := filepath.Join(d.tmp, "app.git")
	wheels := filepath.Join(d.tmp, "wheels")
	for _, dir := range []string{d.home, d.app, wheels} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// git as a fresh machine has it: no user configured.
	for k, v := range map[string]string{
		"GIT_AUTHOR_NAME": "Demo User", "GIT_AUTHOR_EMAIL": "demo@example.com",
		"GIT_COMMITTER_NAME": "Demo User", "GIT_COMMITTER_EMAIL": "demo@example.com",
		"MAGEFAB_SKIP_TESTS": "", "MAGEFAB_ENV": "", "MAGEFAB_HOSTS": "",
	} {
		os.Setenv(k, v)
	}
	packed, err := d.py.Wheels(wheels, d.reqs...)
	if err != nil {
		return fmt.Errorf("demo: packing what the example app needs: %w", err)
	}

	d.srv = sshtest.NewUnstartedServer()
	d.srv.Alias = "demo-host"
	d.srv.Dir = d.home
	d.srv.Env = []string{"HOME=" + d.home, "XDG_CACHE_HOME="} // its script cache in its own home
	if err := d.srv.Listen(); err != nil {
		return fmt.Errorf("demo: starting the embedded SSH host: %w", err)
	}
	files, err := d.srv.WriteClientFiles(filepath.Join(d.tmp, "ssh"))
	if err != nil {
		return err
	}
	slots := filepath.Join(d.home, "init.d", exampleUnit+"-slot")
	front, err := d.startFront()
	if err != nil {
		return err
	}
	d.cleanup = func() {
		pids, _ := filepath.Glob(filepath.Join(d.home, "webapps", exampleUnit, "releases", "*", "run", "*.pid"))
		for _, p := range pids {
			run := filepath.Dir(p)
			exec.Command("sh", slots, "stop", filepath.Dir(run), strings.TrimSuffix(filepath.Base(p), ".pid")).Run()
		}
		front.Close()
		d.srv.Close()
	}
	if err := os.MkdirAll(filepath.Join(d.home, "init.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(slots, fmt.Appendf(nil, slotScript, exampleUnit), 0o755); err != nil {
		return err
	}

	fsys, err := examples.FS(exampleName)
	if err != nil {
		return err
	}
	if err := os.CopyFS(d.app, fsys); err != nil {
		return err
	}
	steps := [][]string{
		{"init", "-q", "--bare", "-b", "master", remote},
		{"init", "-q", "-b", "master"},
		{"remote", "add", "origin", remote},
		{"add", "."},
		{"commit", "-q", "-m", "The Tornado example app"},
		{"tag", "-a", "-m", "first release", "v0.1.0"},
		{"push", "-q", "origin", "master", "v0.1.0"},
	}
	for _, s := range steps {
		if _, err := d.git(s...); err != nil {
			return err
		}
	}

	magetargets.Configure(magetargets.Config{
		Unit:              exampleUnit,
		Path:              "webapps/" + exampleUnit,
		SCM:               remote,
		RootDir:           d.app,
		Python:            python(),
		PipRequirements:   []string{exampleReqs},
		PipInstallCommand: "pip install --no-index --find-links " + wheels,
		Slots: magetargets.Slots{
			Start: "sh init.d/" + exampleUnit + "-slot start {{.Dir}} {{.Slot}}",
			Stop:  "sh init.d/" + exampleUnit + "-slot stop {{.Dir}} {{.Slot}}",
			Check: "/version",
		},
		NoSudo:     true,
		VersionURL: fmt.Sprintf("http://127.0.0.1:%d/version", d.port),
		SSH:        magetargets.SSH{ConfigFile: files.ConfigFile},
		Environments: map[string]magetargets.Environment{
			"production": {Hosts: []string{files.Alias}},
		},
	})

	var whls []string
	for _, w := range packed {
		whls = append(whls, filepath.Base(w))
	}
	fmt.Fprintf(d.out, "magefab demo: an embedded SSH host (%s, alias %s, host key checked), the Tornado example app (examples/%s) in a git repository, and the real targets.\n", d.srv.Addr, files.Alias, exampleName)
	fmt.Fprintf(d.out, "Its requirements come from this machine's Python (%s), packed as wheels: %s\n", python(), strings.Join(whls, ", "))
	fmt.Fprintf(d.out, "The app runs in slots: a front server on 127.0.0.1:%d (as nginx would) proxies to releases/current/run/app.sock, and each deploy starts the new release beside the live one.\n", d.port)
	prod := magetargets.Env{}.Production
	fetch := func() {
		for _, path := range []string{"/", "/version"} {
			body, err := get(fmt.Sprintf("http://127.0.0.1:%d%s", d.port, path))
			if err != nil {
				body = "(" + err.Error() + ")"
			}
			fmt.Fprintf(d.out, "$ curl http://127.0.0.1:%d%s\n%s", d.port, path, body)
		}
	}

	d.say("$ mage env:production deploy:tag v0.1.0")
	if err := run(prod, func() error { return magetargets.Deploy{}.Tag(ctx, "v0.1.0") }); err != nil {
		return err
	}
	fetch()

	if err := os.WriteFile(filepath.Join(d.app, "CHANGES"), []byte("a second commit\n"), 0o644); err != nil {
		return err
	}
	for _, s := range [][]string{{"add", "CHANGES"}, {"commit", "-q", "-m", "A second commit"}} {
		if _, err := d.git(s...); err != nil {
			return err
		}
	}
	sha, err := d.git("rev-parse", "--short", "HEAD")
	if err != nil {
		return err
	}
	d.say("$ MAGEFAB_TAG=v0.1.1 mage env:production deploy:commit %s    # production: the commit is tagged v0.1.1 first", sha)
	os.Setenv("MAGEFAB_TAG", "v0.1.1")
	if _, err := d.git("push", "-q", "origin", "master"); err != nil {
		return err
	}
	err = d.underLoad(ctx, func() error { return run(prod, func() error { return magetargets.Deploy{}.Commit(ctx, sha) }) })
	os.Unsetenv("MAGEFAB_TAG")
	if err != nil {
		return err
	}
	fetch()

	d.say("$ mage env:production deploy:status")
	if err := run(prod, func() error { return magetargets.Deploy{}.Status(ctx) }); err != nil {
		return err
	}
	d.say("$ mage env:production deploy:rollback")
	if err := d.underLoad(ctx, func() error { return run(prod, func() error { return magetargets.Deploy{}.Rollback(ctx) }) }); err != nil {
		return err
	}
	fetch()
	d.say("$ mage env:production maint:enable")
	if err := d.underLoad(ctx, func() error { return run(prod, func() error { return magetargets.Maint{}.Enable(ctx) }) }); err != nil {
		return err
	}
	fetch()
	d.say("$ mage env:production maint:disable")
	if err := run(prod, func() error { return magetargets.Maint{}.Disable(ctx) }); err != nil {
		return err
	}
	fetch()
	st := d.srv.Stats()
	d.say("done: %d SSH connection(s) and %d session(s) to the host for the whole demo; everything it made is removed.", st.Connections, st.Sessions)
	return nil
}

// python prefers the system interpreter, which starts faster than a
// version manager's shim.
func python() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

// run selects an environment then runs a target, as mage does for
// `mage env:production deploy:tag v0.1.0`.
func run(env func() error, target func() error) error {
	if err := env(); err != nil {
		return err
	}
	return target()
}

func get(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// startFront serves 127.0.0.1:port as nginx would in front of the app:
// each request on a new connection to releases/current/run/app.sock,
// whose links connect() resolves each time.
func (d *demo) startFront() (*http.Server, error) {
	sock := filepath.Join(d.home, "webapps", exampleUnit, "releases", "current", "run", "app.sock")
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", d.port))
	if err != nil {
		return nil, fmt.Errorf("demo: the front server: %w", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "app" },
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		}},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return srv, nil
}

// underLoad runs target while asking the app for its version 200 times a
// second through the front server, then says how many of those requests
// failed: refused, reset, answered with a server error, or unanswered
// after 10 seconds (a busy machine can make a request slow; a switch that
// loses one makes it fail).
func (d *demo) underLoad(ctx context.Context, target func() error) error {
	r, err := load.Start(ctx, []load.Target{{Name: "demo-host", URL: fmt.Sprintf("http://127.0.0.1:%d/version", d.port)}}, load.Options{Rate: 200, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	err = target()
	rep := r.Stop()
	fmt.Fprintf(d.out, "meanwhile, 200 requests/s to the app: %d sent, %d failed (p99 %s)\n", rep.Requests, rep.Failed, rep.P99.Round(time.Millisecond))
	for i, f := range rep.Failures {
		if i == 5 {
			fmt.Fprintf(d.out, "  ... and %d more\n", rep.Failed-i)
			break
		}
		fmt.Fprintf(d.out, "  failed: %s\n", f)
	}
	return err
}
