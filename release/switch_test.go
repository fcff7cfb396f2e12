package release_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// fakeCrontab is a crontab command that installs a file by copying it to
// $HOME/crontab-installed, and fails while $HOME/fail-crontab exists.
const fakeCrontab = `#!/bin/sh
if [ -e "$HOME/fail-crontab" ]; then echo "crontab: cannot install the new crontab" >&2; exit 1; fi
cp "$1" "$HOME/crontab-installed"
`

// fakeBin writes executables into a new directory and returns the PATH
// entry that puts it first.
func fakeBin(t *testing.T, files map[string]string) string {
	t.Helper()
	bin := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return "PATH=" + bin + ":" + os.Getenv("PATH")
}

// release commits files (nil content removes the file) and tags the
// commit.
func (f *testFleet) release(t *testing.T, name string, files map[string]string) release.Target {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(f.clone, p)
		if body == "" {
			git(t, f.clone, "rm", "-q", p)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(body), 0o644)
		git(t, f.clone, "add", p)
	}
	return f.tag(t, name)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestCrontabMissingFromTheReleaseIsRefusedInPrepare(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, fakeBin(t, map[string]string{"crontab": fakeCrontab}))
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Crontab, f.opts.CrontabUser = "deploy/crontab", "deploy"
	fl := f.fleet()
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	for i := range f.hosts {
		if got := readFile(t, filepath.Join(f.homes[i], "crontab-installed")); got != "# v0.1.0\n" {
			t.Errorf("h%d crontab = %q after the first deploy", i+1, got)
		}
	}
	before := readFile(t, filepath.Join(f.homes[0], "restarts"))

	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": ""})
	_, err := fl.Deploy(ctx, v2)
	if err == nil {
		t.Fatal("a release without its crontab file was deployed")
	}
	// Both hosts are named: the first host's failure does not hide the
	// second's.
	for _, want := range []string{"no host was switched", "2 hosts failed", "h1: prepare: crontab file deploy/crontab is missing from release b (/", "h2: prepare: crontab file deploy/crontab is missing from release b (/", "/app/releases/b/deploy/crontab)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	f.assertAll(t, "after a refused prepare", "a", v1.SHA)
	if got := readFile(t, filepath.Join(f.homes[0], "restarts")); got != before {
		t.Errorf("h1 restarted: %q, before %q", got, before)
	}
}

func TestCrontabCommandMissingIsRefusedInPrepare(t *testing.T) {
	t.Parallel()
	// A PATH with every command of this machine but crontab.
	bin := t.TempDir()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "crontab" {
				os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(bin, e.Name())) // the first of a name wins, as on PATH
			}
		}
	}
	f := newTestFleet(t, 1, "PATH="+bin)
	f.opts.Requirements = nil
	f.opts.Crontab, f.opts.CrontabUser = "deploy/crontab", "deploy"
	v1 := f.release(t, "v0.1.0", map[string]string{"deploy/crontab": "# v0.1.0\n"})
	_, err := f.fleet().Deploy(context.Background(), v1)
	if err == nil || !strings.Contains(err.Error(), "h1: prepare: the crontab command is not installed on this host") {
		t.Fatalf("err = %v, want the missing crontab command named", err)
	}
	if got := f.current(t, 0); got != "" {
		t.Errorf("h1 switched to %s", got)
	}
	if _, err := os.Stat(filepath.Join(f.root(0), ".lock")); err == nil {
		t.Errorf("h1 left locked")
	}
}

func TestAfterSwitchFailureOnOneHostPutsBothBack(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, fakeBin(t, map[string]string{"crontab": fakeCrontab}))
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Crontab, f.opts.CrontabUser = "deploy/crontab", "deploy"
	fl := f.fleet()
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	// h2 restarts with v0.2.0, then cannot install its crontab.
	os.WriteFile(filepath.Join(f.homes[1], "fail-crontab"), nil, 0o644)
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	_, err := fl.Deploy(ctx, v2)
	if err == nil {
		t.Fatal("deploy succeeded though h2 could not install its crontab")
	}
	for _, want := range []string{"every host that had switched was switched back", "installing the crontab for deploy failed; switched back to a",
		"h1: v0.1.0 in a (the previous release: switched back)", "h2: v0.1.0 in a (the previous release: its switch failed and it was switched back)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	var se *release.SwitchError
	if !errors.As(err, &se) || se.Host != "h2" || se.Down || se.Serving != "a" {
		t.Errorf("errors.As SwitchError = %+v", se)
	}
	f.assertAll(t, "after an after-switch failure", "a", v1.SHA)
	// h1 had installed v0.2.0's crontab: switching back put v0.1.0's back.
	for i := range f.hosts {
		if got := readFile(t, filepath.Join(f.homes[i], "crontab-installed")); got != "# v0.1.0\n" {
			t.Errorf("h%d crontab = %q, want v0.1.0's", i+1, got)
		}
		// Each restarted with b, then with a again.
		if got := readFile(t, filepath.Join(f.homes[i], "restarts")); got != "a\nb\na\n" {
			t.Errorf("h%d restarts = %q", i+1, got)
		}
	}
	if log := readFile(t, filepath.Join(f.root(1), "revisions.log")); !strings.Contains(log, "\tv0.1.0\t"+v1.SHA+"\ta\tswitched back: crontab install failed\n") {
		t.Errorf("h2's log does not tell the switch back:\n%s", log)
	}

	// Mended, the same deploy goes through.
	os.Remove(filepath.Join(f.homes[1], "fail-crontab"))
	if _, err := fl.Deploy(ctx, v2); err != nil {
		t.Fatalf("rerun: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "rerun", "b", v2.SHA)
	for i := range f.hosts {
		if got := readFile(t, filepath.Join(f.homes[i], "crontab-installed")); got != "# v0.2.0\n" {
			t.Errorf("h%d crontab = %q, want v0.2.0's", i+1, got)
		}
	}
}

// celeryScript is an init script that logs each restart with its release
// and where current points, and fails while $HOME/fail-celery-<release>
// exists.
func celeryScript(release string) string {
	return `#!/bin/sh
echo "$1 ` + release + ` $(readlink "$HOME/app/releases/current")" >> "$HOME/celery.log"
[ ! -e "$HOME/fail-celery-` + release + `" ]
`
}

func TestStagedInitScriptGoesLiveWithTheSwitch(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	// Relative to the login directory: each test host has its own.
	const initScript = "init.d/celeryd"
	f.opts.Services = []string{initScript}
	f.opts.Staged = []string{initScript}
	for _, home := range f.homes {
		os.Mkdir(filepath.Join(home, "init.d"), 0o755)
	}
	fl := f.fleet()
	fl.PerHost = func(ctx context.Context, p *release.Prepared) error {
		dst := release.StagedPath(initScript, p.Host.Name())
		return p.Host.Upload(ctx, sshx.File{Path: dst, Mode: 0o755}, strings.NewReader(celeryScript(p.Target.Name)))
	}
	live := func(i int) string { return readFile(t, filepath.Join(f.homes[i], initScript)) }
	lastCelery := func(i int) string {
		lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(f.homes[i], "celery.log"))), "\n")
		return lines[len(lines)-1]
	}
	leftovers := func(what string) {
		t.Helper()
		for i, home := range f.homes {
			m, _ := filepath.Glob(filepath.Join(home, "init.d", ".celeryd.magefab-new.*"))
			if len(m) > 0 {
				t.Errorf("%s: h%d has staged files left: %v", what, i+1, m)
			}
		}
	}

	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	for i := range f.hosts {
		st, err := os.Stat(filepath.Join(f.homes[i], initScript))
		if err != nil || st.Mode().Perm() != 0o755 || live(i) != celeryScript("v0.1.0") {
			t.Fatalf("h%d: %s: %v %v %q", i+1, initScript, st, err, live(i))
		}
		// Restarted after the switch: current already points at a.
		if got := lastCelery(i); got != "restart v0.1.0 a" {
			t.Errorf("h%d celery.log ends with %q", i+1, got)
		}
	}
	leftovers("first deploy")

	// A deploy that fails before the switch leaves the live script alone
	// and removes the staged ones.
	v2 := f.tag(t, "v0.2.0")
	fl.AfterPrepare = func(ctx context.Context, prepared []*release.Prepared) error {
		for i := range f.hosts {
			if _, err := os.Stat(filepath.Join(f.homes[i], release.StagedPath(initScript, f.hosts[i].Name()))); err != nil {
				t.Errorf("h%d: nothing staged while prepared: %v", i+1, err)
			}
		}
		return errors.New("migrations failed")
	}
	if _, err := fl.Deploy(ctx, v2); err == nil || !strings.Contains(err.Error(), "migrations failed") {
		t.Fatalf("err = %v", err)
	}
	fl.AfterPrepare = nil
	for i := range f.hosts {
		if live(i) != celeryScript("v0.1.0") {
			t.Errorf("h%d: a failed prepare replaced the live init script: %q", i+1, live(i))
		}
	}
	leftovers("failed prepare")

	// h2's celery fails with v0.2.0: h2 puts its previous script back and
	// restarts it; h1, which had switched, is switched back the same way.
	os.WriteFile(filepath.Join(f.homes[1], "fail-celery-v0.2.0"), nil, 0o644)
	_, err := fl.Deploy(ctx, v2)
	if err == nil || !strings.Contains(err.Error(), "restarting init.d/celeryd failed; switched back to a") {
		t.Fatalf("err = %v", err)
	}
	f.assertAll(t, "after a failed celery restart", "a", v1.SHA)
	for i := range f.hosts {
		if live(i) != celeryScript("v0.1.0") {
			t.Errorf("h%d: the previous init script is not back: %q", i+1, live(i))
		}
		if got := lastCelery(i); got != "restart v0.1.0 a" {
			t.Errorf("h%d: celery.log ends with %q, want the previous script restarted with a", i+1, got)
		}
	}
	if log := readFile(t, filepath.Join(f.homes[0], "celery.log")); !strings.Contains(log, "restart v0.2.0 b\nrestart v0.1.0 a\n") {
		t.Errorf("h1 celery.log:\n%s", log)
	}
	leftovers("failed switch")

	os.Remove(filepath.Join(f.homes[1], "fail-celery-v0.2.0"))
	f.mustDeploy(t, fl, v2)
	f.assertAll(t, "rerun", "b", v2.SHA)
	for i := range f.hosts {
		if live(i) != celeryScript("v0.2.0") || lastCelery(i) != "restart v0.2.0 b" {
			t.Errorf("h%d: script %q, celery.log ends with %q", i+1, live(i), lastCelery(i))
		}
	}
	leftovers("rerun")
	f.assertOneConnection(t)
}

func TestFailedSwitchBackSaysWhichHostServesWhat(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Restart = recordingRestart
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	// h2 cannot restart with the new release (b); h1 can, but then cannot
	// restart with the previous one (a) when it is switched back.
	os.WriteFile(filepath.Join(f.homes[1], "fail-restart-b"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[0], "fail-restart-a"), nil, 0o644)
	v2 := f.tag(t, "v0.2.0")
	_, err := fl.Deploy(ctx, v2)
	var split *release.SplitError
	if !errors.As(err, &split) {
		t.Fatalf("err = %v, want a SplitError", err)
	}
	for _, want := range []string{
		"THE FLEET IS SPLIT",
		"h1: v0.2.0 in b (the new release: switching back failed: ",
		"h2: v0.1.0 in a (the previous release: its switch failed and it was switched back)",
		"to bring every host back to v0.1.0, mend what failed above, then deploy it again (each host reuses the dir that holds it)\n",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if back, ok := split.Reunite(); !ok || back != v1 || !split.Split || split.ExitStatus() != 77 {
		t.Errorf("SplitError reunites with %+v (%v), split %v, exit status %d; want %+v", back, ok, split.Split, split.ExitStatus(), v1)
	}
	if s := split.Serving; len(s) != 2 || s[0].Host != "h1" || s[0].Release != "v0.2.0" || s[0].Dir != "b" || s[1].Host != "h2" || s[1].Release != "v0.1.0" || s[1].Dir != "a" {
		t.Errorf("Serving = %+v", s)
	}
	var se *release.SwitchError
	if !errors.As(err, &se) || se.Host != "h2" {
		t.Errorf("the cause is not reachable: %+v", se)
	}
	if f.current(t, 0) != "b" || f.current(t, 1) != "a" {
		t.Fatalf("h1 -> %s, h2 -> %s, want b and a as reported", f.current(t, 0), f.current(t, 1))
	}
	for i := range f.hosts {
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err == nil {
			t.Errorf("h%d left locked", i+1)
		}
	}

	// The command the error gives converges the fleet, once h1 can restart
	// with a: every host reuses the dir holding v0.1.0.
	os.Remove(filepath.Join(f.homes[0], "fail-restart-a"))
	res, err := fl.Deploy(ctx, v1)
	if err != nil {
		t.Fatalf("redeploying v0.1.0: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "converged", "a", v1.SHA)
	for _, r := range res {
		if !r.Reused {
			t.Errorf("%s did not reuse its dir: %+v", r.Host, r)
		}
	}
	f.assertOneConnection(t)
}

func TestSplitErrorReunitesWithAnUntaggedRelease(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Restart = `cur=$(readlink "$HOME/app/releases/current"); [ ! -e "$HOME/fail-restart-$cur" ]`
	fl := f.fleet()
	sha := commit(t, f.clone, "untagged")
	git(t, f.clone, "push", "-q", "origin", "master")
	v1 := release.Target{Name: "v0.0.0-1-g" + sha[:7], SHA: sha}
	f.mustDeploy(t, fl, v1)
	os.WriteFile(filepath.Join(f.homes[1], "fail-restart-b"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[0], "fail-restart-a"), nil, 0o644)
	_, err := fl.Deploy(ctx, f.tag(t, "v0.2.0"))
	var split *release.SplitError
	if !errors.As(err, &split) {
		t.Fatalf("err = %v, want a SplitError", err)
	}
	if back, ok := split.Reunite(); !ok || back.SHA != sha || back.Tag != "" {
		t.Fatalf("SplitError %+v reunites with %+v (%v), want the untagged %s", split, back, ok, sha)
	}
}

func TestEveryFailedHostIsNamed(t *testing.T) {
	t.Parallel()
	bin := fakeBin(t, map[string]string{"git": "#!/bin/sh\nif [ \"$1\" = fetch ] && [ -e \"$HOME/break-fetch\" ]; then echo 'fatal: could not read from remote repository' >&2; exit 128; fi\nexec /usr/bin/git \"$@\"\n"})
	f := newTestFleet(t, 3, bin)
	ctx := context.Background()
	f.opts.Requirements = nil
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	// The first and the last host are broken.
	os.WriteFile(filepath.Join(f.homes[0], "break-fetch"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[2], "break-fetch"), nil, 0o644)
	v2 := f.tag(t, "v0.2.0")
	_, err := fl.Deploy(ctx, v2)
	if err == nil {
		t.Fatal("deploy succeeded with two broken hosts")
	}
	for _, want := range []string{"no host was switched", "2 hosts failed", "h1: prepare: git fetch in", "h3: prepare: git fetch in"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "not started") || strings.Contains(err.Error(), "h2") {
		t.Errorf("error blames h2, which prepared:\n%v", err)
	}
	var failed []string
	var me interface{ WrappedErrors() []error }
	if errors.As(err, &me) {
		for _, e := range me.WrappedErrors() {
			var he *sshx.HostError
			if errors.As(e, &he) {
				failed = append(failed, he.Host)
			}
		}
	}
	if fmt.Sprint(failed) != "[h1 h3]" {
		t.Errorf("failed hosts %v, want [h1 h3]", failed)
	}
	// h2 prepared (b holds v0.2.0) but did not switch.
	if head := strings.TrimSpace(readFile(t, filepath.Join(f.root(1), "b", ".git", "HEAD"))); head != v2.SHA {
		t.Errorf("h2 did not prepare: b at %s", head)
	}
	f.assertAll(t, "after two failed hosts", "a", v1.SHA)

	// A lock held on the first host still stops the others before they
	// lock anything.
	os.Remove(filepath.Join(f.homes[0], "break-fetch"))
	os.Remove(filepath.Join(f.homes[2], "break-fetch"))
	lock := filepath.Join(f.root(0), ".lock")
	os.Mkdir(lock, 0o755)
	os.WriteFile(filepath.Join(lock, "owner"), []byte("alice@desk deploying v0.0.9\n"), 0o644)
	before := f.sessions()
	_, err = fl.Deploy(ctx, f.tag(t, "v0.3.0"))
	var le *release.LockedError
	if !errors.As(err, &le) || le.Host != "h1" {
		t.Errorf("err = %v, want h1 locked", err)
	}
	after := f.sessions()
	if after[2]-before[2] > 1 {
		t.Errorf("h3 ran %d sessions though h1 was locked (at most the unlock)", after[2]-before[2])
	}
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("alice's lock was removed")
	}
}

// dirCrontab is a crontab command that installs a file by copying it to
// $HOME/crontab-installed, and fails for the file of release dir D while
// $HOME/fail-crontab-D exists.
const dirCrontab = `#!/bin/sh
d=$(basename "$(dirname "$(dirname "$1")")")
if [ -e "$HOME/fail-crontab-$d" ]; then echo "crontab: cannot install $1" >&2; exit 1; fi
cp "$1" "$HOME/crontab-installed"
`

// afterSwitchFleet is a fleet of n hosts whose switch installs the
// release's crontab (dirCrontab), puts a staged init script in place
// (celeryScript) and restarts it, and whose app's restart logs where
// current points and fails while $HOME/fail-restart-<dir> exists.
func afterSwitchFleet(t *testing.T, n int, path string) (*testFleet, *release.Fleet) {
	t.Helper()
	f := newTestFleet(t, n, path)
	f.opts.Requirements = nil
	f.opts.Crontab, f.opts.CrontabUser = "deploy/crontab", "deploy"
	f.opts.Restart = recordingRestart
	const initScript = "init.d/celeryd"
	f.opts.Services = []string{initScript}
	f.opts.Staged = []string{initScript}
	for _, home := range f.homes {
		os.Mkdir(filepath.Join(home, "init.d"), 0o755)
	}
	fl := f.fleet()
	fl.PerHost = func(ctx context.Context, p *release.Prepared) error {
		return p.Host.Upload(ctx, sshx.File{Path: release.StagedPath(initScript, p.Host.Name()), Mode: 0o755}, strings.NewReader(celeryScript(p.Target.Name)))
	}
	return f, fl
}

// deployWithCrontab deploys a new release tag whose crontab names it, and
// stops the test if that fails.
func (f *testFleet) deployWithCrontab(t *testing.T, fl *release.Fleet, tag string) release.Target {
	t.Helper()
	rel := f.release(t, tag, map[string]string{"deploy/crontab": "# " + tag + "\n"})
	f.mustDeploy(t, fl, rel)
	return rel
}

// mustDeploy deploys rel with fl and stops the test, with the run's
// output, if that fails.
func (f *testFleet) mustDeploy(t *testing.T, fl *release.Fleet, rel release.Target) {
	t.Helper()
	if _, err := fl.Deploy(context.Background(), rel); err != nil {
		t.Fatalf("deploying %s: %v\n%s", rel.Name, err, f.out.String())
	}
}

// recordingRestart is a restart command that appends the dir current
// points to to ~/restarts, and fails for a dir with ~/fail-restart-<dir>.
const recordingRestart = `cur=$(readlink "$HOME/app/releases/current"); echo "$cur" >> "$HOME/restarts"; [ ! -e "$HOME/fail-restart-$cur" ]`

func (f *testFleet) lastCelery(t *testing.T, i int) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(f.homes[i], "celery.log"))), "\n")
	return lines[len(lines)-1]
}

func TestSwitchBackKeepsThePreviousReleaseWhenAnUndoFails(t *testing.T) {
	t.Parallel()
	f, fl := afterSwitchFleet(t, 2, fakeBin(t, map[string]string{"crontab": dirCrontab}))
	ctx := context.Background()
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	// h2's app does not restart with b, so h1, which switched, is switched
	// back; there a's crontab cannot be installed again.
	os.WriteFile(filepath.Join(f.homes[1], "fail-restart-b"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[0], "fail-crontab-a"), nil, 0o644)
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	_, err := fl.Deploy(ctx, v2)
	var split *release.SplitError
	if !errors.As(err, &split) || split.ExitStatus() != 77 {
		t.Fatalf("err = %v, want a SplitError", err)
	}
	for _, want := range []string{
		"THE FLEET IS NOT WHOLE",
		"h1: v0.1.0 in a (the previous release: switched back, but not every after-switch step was undone: reinstalling the crontab of a for deploy failed",
		"h2: v0.1.0 in a (the previous release: its switch failed and it was switched back)",
		"to bring every host back to v0.1.0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "THE FLEET IS SPLIT") || strings.Contains(err.Error(), "the new release") {
		t.Errorf("error claims a host serves the new release:\n%v", err)
	}
	// h1 stays on a, restarted once with it; the undo went on past the
	// crontab: its previous init script is back and restarted with a.
	f.assertAll(t, "after a failed undo", "a", v1.SHA)
	if got := readFile(t, filepath.Join(f.homes[0], "restarts")); got != "a\nb\na\n" {
		t.Errorf("h1 restarts = %q, want a, b, a", got)
	}
	if got := readFile(t, filepath.Join(f.homes[0], "init.d", "celeryd")); got != celeryScript("v0.1.0") {
		t.Errorf("h1 init script = %q, want v0.1.0's", got)
	}
	if got := f.lastCelery(t, 0); got != "restart v0.1.0 a" {
		t.Errorf("h1 celery.log ends with %q", got)
	}
	// What could not be undone is what the report says.
	if got := readFile(t, filepath.Join(f.homes[0], "crontab-installed")); got != "# v0.2.0\n" {
		t.Errorf("h1 crontab = %q", got)
	}
}

// slowRestart is an app restart that logs where current points; the first
// restart with dir D hangs while $HOME/hang-D exists, later ones take 2
// seconds while $HOME/slow-D exists. Each logs into $HOME/unlocked a
// restart that ended while the host had no deploy lock, and into
// $HOME/restarted each restart that ended.
const slowRestart = `cur=$(readlink "$HOME/app/releases/current"); echo "$cur" >> "$HOME/restarts"
if [ -e "$HOME/hang-$cur" ]; then rm -f "$HOME/hang-$cur"; sleep 30; fi
if [ -e "$HOME/slow-$cur" ]; then sleep 2; fi
[ -d "$HOME/app/releases/.lock" ] || echo "$cur" >> "$HOME/unlocked"
echo "$cur" >> "$HOME/restarted"
[ ! -e "$HOME/fail-restart-$cur" ]`

// waitRestarted waits until host i has ended n restarts of slowRestart.
func (f *testFleet) waitRestarted(t *testing.T, i, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(readFile(t, filepath.Join(f.homes[i], "restarted")), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("h%d ended restarts %q, want %d", i+1, readFile(t, filepath.Join(f.homes[i], "restarted")), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitUnlocked waits until host i has no deploy lock.
func (f *testFleet) waitUnlocked(t *testing.T, i int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("h%d still locked", i+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestInterruptedSwitchBackGoesOnToThePreviousRelease(t *testing.T) {
	t.Parallel()
	f, fl := afterSwitchFleet(t, 2, fakeBin(t, map[string]string{"crontab": dirCrontab}))
	f.opts.Restart = slowRestart
	fl.SwitchTimeout = 3 * time.Second
	ctx := context.Background()
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	// h2's app does not restart with b; switching h1 back, its app hangs
	// restarting with a, and the run stops waiting.
	os.WriteFile(filepath.Join(f.homes[1], "fail-restart-b"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[0], "hang-a"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[0], "slow-a"), nil, 0o644)
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	_, err := fl.Deploy(ctx, v2)
	var split *release.SplitError
	if !errors.As(err, &split) || !strings.Contains(err.Error(), "h1: unknown: switching back failed") {
		t.Fatalf("err = %v, want a SplitError naming h1 unknown", err)
	}
	// h1 finishes switching back by itself, holding the lock meanwhile.
	f.waitUnlocked(t, 0)
	// a, b, then a going on by itself (the first a hung and was killed).
	f.waitRestarted(t, 0, 3)
	f.assertAll(t, "after the interrupted switch back", "a", v1.SHA)
	if got := readFile(t, filepath.Join(f.homes[0], "restarts")); got != "a\nb\na\na\n" {
		t.Errorf("h1 restarts = %q, want a, b, a, a", got)
	}
	if got := readFile(t, filepath.Join(f.homes[0], "unlocked")); got != "" {
		t.Errorf("h1 restarted with %q while unlocked", got)
	}
	if got := readFile(t, filepath.Join(f.homes[0], "crontab-installed")); got != "# v0.1.0\n" {
		t.Errorf("h1 crontab = %q, want v0.1.0's", got)
	}
	if got := readFile(t, filepath.Join(f.homes[0], "init.d", "celeryd")); got != celeryScript("v0.1.0") {
		t.Errorf("h1 init script = %q, want v0.1.0's", got)
	}
	if got := f.lastCelery(t, 0); got != "restart v0.1.0 a" {
		t.Errorf("h1 celery.log ends with %q", got)
	}
}

func TestAfterSwitchUndoFailureIsNotReportedAsARestartFailure(t *testing.T) {
	t.Parallel()
	f, fl := afterSwitchFleet(t, 2, fakeBin(t, map[string]string{"crontab": dirCrontab}))
	ctx := context.Background()
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	// h2's celery fails with v0.2.0; switching h2 back, a's crontab cannot
	// be installed again.
	os.WriteFile(filepath.Join(f.homes[1], "fail-celery-v0.2.0"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[1], "fail-crontab-a"), nil, 0o644)
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	_, err := fl.Deploy(ctx, v2)
	var se *release.SwitchError
	if !errors.As(err, &se) || se.Host != "h2" || se.Serving != "a" || se.Down || !se.Incomplete {
		t.Fatalf("err = %v, SwitchError %+v", err, se)
	}
	if strings.Contains(err.Error(), "did not restart") {
		t.Errorf("the app restarted, yet the error says it did not:\n%v", err)
	}
	var split *release.SplitError
	for _, want := range []string{"h2 serves the release in a again, but not every after-switch step was undone",
		"h2: v0.1.0 in a (the previous release: its switch failed and it was switched back, but not every after-switch step was undone: restarting init.d/celeryd failed; switched back to a; reinstalling the crontab of a for deploy failed"} {
		if !strings.Contains(err.Error(), want) || !errors.As(err, &split) {
			t.Errorf("error lacks %q or is no SplitError:\n%v", want, err)
		}
	}
	f.assertAll(t, "after a failed undo", "a", v1.SHA)
	// The undo went on past the crontab.
	if got := readFile(t, filepath.Join(f.homes[1], "init.d", "celeryd")); got != celeryScript("v0.1.0") {
		t.Errorf("h2 init script = %q, want v0.1.0's", got)
	}
	if got := f.lastCelery(t, 1); got != "restart v0.1.0 a" {
		t.Errorf("h2 celery.log ends with %q", got)
	}
}

func TestTimedOutSwitchKeepsTheLockWhileItGoesBack(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Restart = slowRestart
	fl := f.fleet()
	fl.SwitchTimeout = 3 * time.Second
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	// h2's app hangs restarting with b; going back by itself, it takes 2
	// seconds to restart with a.
	os.WriteFile(filepath.Join(f.homes[1], "hang-b"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[1], "slow-a"), nil, 0o644)
	if _, err := fl.Deploy(ctx, f.tag(t, "v0.2.0")); err == nil || !strings.Contains(err.Error(), "switch timed out") {
		t.Fatalf("err = %v", err)
	}
	f.waitUnlocked(t, 1)
	// a, then a again going back by itself (b hung and was killed).
	f.waitRestarted(t, 1, 2)
	f.assertAll(t, "after the timeout", "a", v1.SHA)
	if got := readFile(t, filepath.Join(f.homes[1], "restarts")); !strings.HasPrefix(got, "a\nb\na\n") {
		t.Errorf("h2 restarts = %q", got)
	}
	if got := readFile(t, filepath.Join(f.homes[1], "unlocked")); got != "" {
		t.Errorf("h2 restarted with %q while unlocked", got)
	}
}

// failingMv is an mv that cannot rename current.tmp over current while it
// points to dir D and $HOME/fail-mv-D exists (only once if
// $HOME/fail-mv-once exists too): a switch to D fails half way.
func failingMv(t *testing.T) string {
	t.Helper()
	mv, err := exec.LookPath("mv")
	if err != nil {
		t.Skip("no mv")
	}
	return `#!/bin/sh
if [ "$1" = -T ]; then
  to=$(readlink "$2")
  if [ -e "$HOME/fail-mv-$to" ]; then
    [ -e "$HOME/fail-mv-once" ] && rm -f "$HOME/fail-mv-$to"
    echo "mv: cannot move $2" >&2; exit 1
  fi
fi
exec ` + mv + ` "$@"
`
}

func TestLostSwitchIsSwitchedBack(t *testing.T) {
	t.Parallel()
	f, fl := afterSwitchFleet(t, 2, fakeBin(t, map[string]string{"crontab": dirCrontab, "mv": failingMv(t)}))
	ctx := context.Background()
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	// h2's celery fails with v0.2.0, and going back to a dies once: what
	// h2 serves is unknown when its switch ends.
	os.WriteFile(filepath.Join(f.homes[1], "fail-celery-v0.2.0"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[1], "fail-mv-a"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[1], "fail-mv-once"), nil, 0o644)
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	_, err := fl.Deploy(ctx, v2)
	if err == nil {
		t.Fatal("deploy succeeded")
	}
	var split *release.SplitError
	if errors.As(err, &split) {
		t.Errorf("every host is back on v0.1.0, yet the error is a SplitError:\n%v", err)
	}
	for _, want := range []string{"every host that had switched was switched back",
		"h1: v0.1.0 in a (the previous release: switched back)", "h2: v0.1.0 in a (the previous release: its switch failed and it was switched back)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	f.assertAll(t, "after the lost switch", "a", v1.SHA)
	for i := range f.hosts {
		if got := readFile(t, filepath.Join(f.homes[i], "init.d", "celeryd")); got != celeryScript("v0.1.0") {
			t.Errorf("h%d init script = %q, want v0.1.0's", i+1, got)
		}
		if got := f.lastCelery(t, i); got != "restart v0.1.0 a" {
			t.Errorf("h%d celery.log ends with %q", i+1, got)
		}
		if got := readFile(t, filepath.Join(f.homes[i], "crontab-installed")); got != "# v0.1.0\n" {
			t.Errorf("h%d crontab = %q, want v0.1.0's", i+1, got)
		}
	}
}

func TestLostSwitchThatCannotBeSwitchedBackSplitsTheFleet(t *testing.T) {
	t.Parallel()
	f, fl := afterSwitchFleet(t, 2, fakeBin(t, map[string]string{"crontab": dirCrontab, "mv": failingMv(t)}))
	ctx := context.Background()
	f.deployWithCrontab(t, fl, "v0.1.0")
	// h2's celery fails with v0.2.0, and h2 cannot go back to a at all.
	os.WriteFile(filepath.Join(f.homes[1], "fail-celery-v0.2.0"), nil, 0o644)
	os.WriteFile(filepath.Join(f.homes[1], "fail-mv-a"), nil, 0o644)
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	_, err := fl.Deploy(ctx, v2)
	var split *release.SplitError
	if !errors.As(err, &split) || split.ExitStatus() != 77 {
		t.Fatalf("err = %v, want a SplitError", err)
	}
	for _, want := range []string{"THE FLEET IS SPLIT", "h1: v0.1.0 in a (the previous release: switched back)",
		"h2: unknown: switching back failed: cannot switch current to a", "to bring every host back to v0.1.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "the fleet serves the previous release") {
		t.Errorf("error claims the fleet is whole:\n%v", err)
	}
	if got := f.current(t, 1); got != "b" {
		t.Errorf("h2 current -> %q", got)
	}
	for i := range f.hosts {
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err == nil {
			t.Errorf("h%d left locked", i+1)
		}
	}
}

func TestRollbackToAReleaseWithoutItsCrontabFileIsRefused(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, fakeBin(t, map[string]string{"crontab": fakeCrontab}))
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Crontab, f.opts.CrontabUser = "deploy/crontab", "deploy"
	fl := f.fleet()
	v1 := f.release(t, "v0.1.0", map[string]string{"deploy/crontab": "# v0.1.0\n"})
	v2 := f.release(t, "v0.2.0", map[string]string{"deploy/crontab": "# v0.2.0\n"})
	for _, v := range []release.Target{v1, v2} {
		if _, err := fl.Deploy(ctx, v); err != nil {
			t.Fatalf("%v\n%s", err, f.out.String())
		}
	}
	// The crontab file went from h2's a, the dir a rollback goes to.
	os.Remove(filepath.Join(f.root(1), "a", "deploy", "crontab"))
	before := readFile(t, filepath.Join(f.homes[0], "restarts"))
	const want = "h2: " // then the dir, and why
	const why = "app/releases/a cannot be rolled back to: crontab file deploy/crontab is missing from release a ("
	_, err := fl.Rollback(ctx)
	if err == nil || !strings.Contains(err.Error(), "no host was rolled back") || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), why) ||
		!strings.Contains(err.Error(), "/app/releases/a/deploy/crontab): a rollback to it could not install its crontab; deploy a release that has it instead") {
		t.Fatalf("rollback: %v", err)
	}
	f.assertAll(t, "after a refused rollback", "b", v2.SHA)
	if got := readFile(t, filepath.Join(f.homes[0], "restarts")); got != before {
		t.Errorf("h1 restarted: %q, before %q", got, before)
	}
	if got := readFile(t, filepath.Join(f.homes[1], "crontab-installed")); got != "# v0.2.0\n" {
		t.Errorf("h2 crontab = %q", got)
	}
	plans, err := fl.RollbackPlan(ctx)
	if err == nil || len(plans) != 2 || plans[0].Err != nil || plans[1].Err == nil || !strings.Contains(plans[1].Err.Error(), why) {
		t.Errorf("dry run: %v %+v", err, plans)
	}
}

func TestRedeployOfTheLiveDirUndoesAFailedAfterSwitchStep(t *testing.T) {
	t.Parallel()
	f, fl := afterSwitchFleet(t, 1, fakeBin(t, map[string]string{"crontab": dirCrontab}))
	ctx := context.Background()
	const initScript = "init.d/celeryd"
	label := "v0.1.0"
	fl.PerHost = func(ctx context.Context, p *release.Prepared) error {
		return p.Host.Upload(ctx, sshx.File{Path: release.StagedPath(initScript, p.Host.Name()), Mode: 0o755}, strings.NewReader(celeryScript(label)))
	}
	v1 := f.deployWithCrontab(t, fl, "v0.1.0")
	// The same release again, with a new init script that fails.
	label = "v0.1.0-new"
	os.WriteFile(filepath.Join(f.homes[0], "fail-celery-v0.1.0-new"), nil, 0o644)
	_, err := fl.Deploy(ctx, v1)
	var se *release.SwitchError
	if !errors.As(err, &se) || se.Serving != "a" || se.Down || se.Incomplete {
		t.Fatalf("err = %v, SwitchError %+v", err, se)
	}
	if !strings.Contains(err.Error(), "restarting init.d/celeryd failed; a stays live") || strings.Contains(err.Error(), "unknown") {
		t.Errorf("error:\n%v", err)
	}
	f.assertAll(t, "after the failed redeploy", "a", v1.SHA)
	if got := readFile(t, filepath.Join(f.homes[0], initScript)); got != celeryScript("v0.1.0") {
		t.Errorf("init script = %q, want the previous one", got)
	}
	if got := f.lastCelery(t, 0); got != "restart v0.1.0 a" {
		t.Errorf("celery.log ends with %q", got)
	}
}
