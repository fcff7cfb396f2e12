package magetargets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magefile/mage/mg"
)

// tree lists every file, dir and link under root with what identifies its
// state: mode, size, modification time, a link's target.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		state := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			state += " -> " + target
		}
		files[p] = state
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// wantSameTree fails the test if anything under the tree before changed.
func wantSameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(after)) {
		if b, ok := before[p]; !ok {
			t.Errorf("%s created %s", what, p)
		} else if b != after[p] {
			t.Errorf("%s changed %s: %s, was %s", what, p, after[p], b)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s removed %s", what, p)
		}
	}
}

// deployedOnce is a host project in development (deploy root "app") whose
// host h1 holds its first commit, deployed with deploy:commit.
func deployedOnce(t *testing.T, ctx context.Context) *hostProject {
	t.Helper()
	p := newHostProject(t)
	p.path = "app"
	configure(t, p.config(p.path))
	t.Setenv(EnvVar, envDevelopment)
	if err := (Deploy{}).Commit(ctx, p.head); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, p.out)
	}
	return p
}

// deployedTwice is a host project in development whose host h1 holds two
// releases: the first in a, the second (live) in b. It returns the first
// release's name and the second commit.
func deployedTwice(t *testing.T, ctx context.Context) (p *hostProject, first, second string) {
	t.Helper()
	p = deployedOnce(t, ctx)
	second = p.commitFiles(t, map[string]string{"later.txt": "later\n"})
	if err := (Deploy{}).Commit(ctx, second); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, p.out)
	}
	if cur := p.current(t); cur != "b" {
		t.Fatalf("current -> %q after two deploys, want b", cur)
	}
	return p, "v0.1.0-1-g" + p.head[:7], second
}

// current is where the host's current link points.
func (p *hostProject) current(t *testing.T) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(p.home, p.path, "releases", "current"))
	if err != nil {
		return ""
	}
	return target
}

// TestRollbackDryRun checks that deploy:rollback with MAGEFAB_DRY_RUN=1
// says per host what it would do and changes nothing, and that the real
// rollback then does it.
func TestRollbackDryRun(t *testing.T) {
	ctx := context.Background()
	p, first, second := deployedTwice(t, ctx)
	before, cmds := tree(t, p.home), len(p.srv.Commands())
	t.Setenv(DryRunVar, "1")
	p.out.Reset()
	if err := (Deploy{}).Rollback(ctx); err != nil {
		t.Fatalf("deploy:rollback dry run: %v\n%s", err, p.out)
	}
	wantSameTree(t, "deploy:rollback dry run", before, tree(t, p.home))
	// The inspection's script is new to the host: the first command finds
	// it missing from the host's script cache, the second stores it.
	if n := len(p.srv.Commands()) - cmds; n != 2 {
		t.Errorf("deploy:rollback dry run ran %d command(s) on the host, want 2 (the inspection, whose script the host stores)", n)
	}
	out := p.out.String()
	for _, want := range []string{
		"dry run: rolling back DEV would do this; nothing is changed",
		"\nh1: current -> b; would point back to a, which holds " + first + "\n",
		"current -> b (v0.1.0-2-g" + second[:7] + ") becomes current -> a (" + first + ")",
		"ln -sfn a current.tmp && mv -T current.tmp current",
		"append to revisions.log",
		"  5. true\n", // the restart command
		"unlock",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}

	// What it said is what the rollback does.
	t.Setenv(DryRunVar, "")
	if err := (Deploy{}).Rollback(ctx); err != nil {
		t.Fatalf("deploy:rollback: %v\n%s", err, p.out)
	}
	if cur := p.current(t); cur != "a" {
		t.Errorf("current -> %q after the rollback, want a", cur)
	}
}

// TestRollbackDryRunNothingToRollBackTo checks that a dry run says why
// the rollback would fail, per host, and fails as the rollback would.
func TestRollbackDryRunNothingToRollBackTo(t *testing.T) {
	ctx := context.Background()
	p := deployedOnce(t, ctx)
	before := tree(t, p.home)
	t.Setenv(DryRunVar, "1")
	err := Deploy{}.Rollback(ctx)
	wantErr(t, "deploy:rollback dry run with one release", err, "dry run", "would fail", "holds no release that was deployed")
	if !strings.Contains(p.out.String(), "\nh1: would fail: ") {
		t.Errorf("output does not say h1 would fail:\n%s", p.out)
	}
	wantSameTree(t, "a refused deploy:rollback dry run", before, tree(t, p.home))
}

// TestDryRunRefusedWithoutPreview checks that the targets with nothing to
// preview refuse MAGEFAB_DRY_RUN before they touch a host.
func TestDryRunRefusedWithoutPreview(t *testing.T) {
	ctx := context.Background()
	p := deployedOnce(t, ctx)
	// A held lock, which deploy:unlock would remove.
	lock := filepath.Join(p.home, p.path, "releases", ".lock")
	if err := os.Mkdir(lock, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(lock, "owner"), []byte("bob@laptop deploying v9\n"), 0o644)
	before, cmds := tree(t, p.home), len(p.srv.Commands())
	t.Setenv(DryRunVar, "1")
	for _, tc := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"deploy:unlock", Deploy{}.Unlock},
		{"maint:enable", Maint{}.Enable},
		{"maint:disable", Maint{}.Disable},
		{"maint:restart", Maint{}.Restart},
		{"pip:install", Pip{}.Install},
		{"pip:setup", Pip{}.Setup},
	} {
		err := tc.run(ctx)
		wantErr(t, tc.name+" with "+DryRunVar+"=1", err, tc.name+" has no dry run", DryRunVar, "unset "+DryRunVar)
	}
	if n := len(p.srv.Commands()) - cmds; n != 0 {
		t.Errorf("refused targets ran %d command(s) on the host", n)
	}
	wantSameTree(t, "refused targets", before, tree(t, p.home))
}

// TestDeployRunsTestsFirst checks that failing tests stop a deploy before
// anything else: the private packages are not fetched (their fetch would
// fail here), the host is not touched, and mage exits with the tests'
// status.
func TestDeployRunsTestsFirst(t *testing.T) {
	ctx := context.Background()
	p := newHostProject(t)
	p.path = "app"
	os.WriteFile(filepath.Join(p.clone, "private.txt"), []byte("secret=="+filepath.Join(t.TempDir(), "missing")+"==v1\n"), 0o644)
	cfg := p.config(p.path)
	cfg.PrivateRequirements = []string{"private.txt"}
	runs := 0
	cfg.TestRunner = func(ctx context.Context, env Environment) error {
		runs++
		return mg.Fatal(3, "2 tests failed")
	}
	configure(t, cfg)
	t.Setenv(EnvVar, envProduction)
	err := Deploy{}.Tag(ctx, "v0.1.0")
	// mage's main reads the status of the outermost error only.
	if code, ok := err.(interface{ ExitStatus() int }); !ok || code.ExitStatus() != 3 || !strings.Contains(err.Error(), "tests failed") {
		t.Errorf("deploy:tag with failing tests = %v (exit status %d), want the tests' failure with exit status 3", err, mg.ExitStatus(err))
	}
	if runs != 1 {
		t.Errorf("the TestRunner ran %d times, want once", runs)
	}
	if n := len(p.srv.Commands()); n != 0 {
		t.Errorf("%d command(s) ran on the host", n)
	}
	if _, err := os.Stat(filepath.Join(p.home, p.path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deploy root exists after failing tests (%v); want no releases dir and no lock", err)
	}
}

// TestDeploySkipsTests checks MAGEFAB_SKIP_TESTS: the runner is not called,
// the output says so, and the deploy goes on.
func TestDeploySkipsTests(t *testing.T) {
	ctx := context.Background()
	p := newHostProject(t)
	p.path = "app"
	cfg := p.config(p.path)
	cfg.TestRunner = func(ctx context.Context, env Environment) error {
		t.Errorf("the TestRunner ran with %s=1", SkipTestsVar)
		return nil
	}
	configure(t, cfg)
	t.Setenv(EnvVar, envProduction)
	t.Setenv(SkipTestsVar, "1")
	if err := (Deploy{}).Tag(ctx, "v0.1.0"); err != nil {
		t.Fatalf("deploy:tag: %v\n%s", err, p.out)
	}
	if !regexp.MustCompile(`(?m)^magefab \| \d\d:\d\d:\d\d tests skipped \(` + SkipTestsVar + `\)$`).MatchString(p.out.String()) {
		t.Errorf("output does not say the tests were skipped:\n%s", p.out)
	}
}

// TestDeployOutput checks what a deploy prints: progress lines prefixed
// with the host (or magefab) and the time, the table of hosts, and the
// line that says what is deployed where.
func TestDeployOutput(t *testing.T) {
	ctx := context.Background()
	p := newHostProject(t)
	p.path = "app"
	configure(t, p.config(p.path))
	t.Setenv(EnvVar, envProduction)
	if err := (Deploy{}).Tag(ctx, "v0.1.0"); err != nil {
		t.Fatalf("deploy:tag: %v\n%s", err, p.out)
	}
	out := p.out.String()
	for _, re := range []string{
		`(?m)^magefab \| \d\d:\d\d:\d\d deploying v0\.1\.0 \(` + p.initial[:7] + `\) to PRODUCTION: h1$`,
		`(?m)^h1      \| \d\d:\d\d:\d\d cloning .+ into a$`,
		`(?m)^h1      \| \d\d:\d\d:\d\d current -> a \(v0\.1\.0\); restarting$`,
		`(?m)^magefab \| \d\d:\d\d:\d\d all 1 host\(s\) prepared; switching$`,
		`(?m)^host  dir   release                   seconds$`,
		`(?m)^h1    a     v0\.1\.0                    \d+\.\d  \(requirements installed\)$`,
		`(?m)^v0\.1\.0 is now deployed to PRODUCTION \(\d+\.\ds\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	// Every line a host or the run itself prints carries the time.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " | ") && !regexp.MustCompile(`^\S+\s+\| \d\d:\d\d:\d\d `).MatchString(l) {
			t.Errorf("line without the time: %q", l)
		}
	}
}

// writeLock makes a deploy lock on the host of p by hand, as another run
// would hold it: taken at since, last refreshed at beat.
func writeLock(t *testing.T, p *hostProject, since, beat time.Time) string {
	t.Helper()
	lock := filepath.Join(p.home, p.path, "releases", ".lock")
	if err := os.Mkdir(lock, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{
		"owner": "carol@ci-7 deploying v0.9.0", "id": "0123456789abcdef", "holder": "ci-7 4242",
		"user": "carol", "machine": "ci-7", "pid": "4242", "release": "v0.9.0", "job": "https://ci.example/jobs/9",
		"since": fmt.Sprint(since.Unix()), "beat": fmt.Sprint(beat.Unix()),
	} {
		if err := os.WriteFile(filepath.Join(lock, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return lock
}

// TestUnlockAsksAboutAFreshLock checks deploy:unlock against a lock whose
// lease is fresh: without a terminal and MAGEFAB_YES it refuses, saying
// how to go on and leaving the lock; at a terminal it shows the holder and
// asks (no keeps the lock, yes removes it); MAGEFAB_YES=1 removes it. A
// lock whose lease expired goes without a question.
func TestUnlockAsksAboutAFreshLock(t *testing.T) {
	ctx := context.Background()
	p := deployedOnce(t, ctx)
	now := time.Now()
	lock := writeLock(t, p, now.Add(-time.Minute), now.Add(-5*time.Second))
	exists := func() bool { _, err := os.Stat(lock); return err == nil }

	p.out.Reset()
	err := Deploy{}.Unlock(ctx)
	wantErr(t, "deploy:unlock of a fresh lock without a terminal", err, "the lock on h1 is fresh", "nothing was removed", "MAGEFAB_YES=1 mage env:development deploy:unlock")
	if !exists() {
		t.Fatal("deploy:unlock without a terminal removed a fresh lock")
	}
	for _, want := range []string{"carol@ci-7 deploying v0.9.0 since ", "holder: carol on ci-7, pid 4242, deploying v0.9.0, CI job https://ci.example/jobs/9", "; last heartbeat "} {
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("deploy:unlock does not show the holder (%q):\n%s", want, p.out)
		}
	}

	var asked bytes.Buffer
	prompts = &prompter{In: strings.NewReader("n\n"), Out: &asked, IsTerminal: func() bool { return true }}
	if err := (Deploy{}).Unlock(ctx); err != nil {
		t.Fatalf("deploy:unlock answered no: %v\n%s", err, p.out)
	}
	if !exists() || !strings.Contains(asked.String(), "The lock on h1 is fresh") || !strings.Contains(p.out.String(), "left the lock of carol@ci-7") {
		t.Fatalf("deploy:unlock answered no: lock there %v, asked %q:\n%s", exists(), asked.String(), p.out)
	}
	prompts = &prompter{In: strings.NewReader("y\n"), Out: &asked, IsTerminal: func() bool { return true }}
	if err := (Deploy{}).Unlock(ctx); err != nil || exists() {
		t.Fatalf("deploy:unlock answered yes: %v, lock there %v\n%s", err, exists(), p.out)
	}

	prompts = &prompter{In: strings.NewReader(""), Out: &asked, IsTerminal: func() bool { return false }}
	writeLock(t, p, now.Add(-time.Minute), now.Add(-5*time.Second))
	t.Setenv(YesVar, "1")
	if err := (Deploy{}).Unlock(ctx); err != nil || exists() {
		t.Fatalf("deploy:unlock with %s=1: %v, lock there %v\n%s", YesVar, err, exists(), p.out)
	}
	t.Setenv(YesVar, "")

	writeLock(t, p, now.Add(-10*time.Minute), now.Add(-5*time.Minute))
	p.out.Reset()
	if err := (Deploy{}).Unlock(ctx); err != nil || exists() {
		t.Fatalf("deploy:unlock of an expired lock: %v, lock there %v\n%s", err, exists(), p.out)
	}
	if !strings.Contains(p.out.String(), "removed the lock held by carol@ci-7 deploying v0.9.0") {
		t.Errorf("deploy:unlock of an expired lock does not name its holder:\n%s", p.out)
	}
}
