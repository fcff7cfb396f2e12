package release_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/release"
)

// buedafabHost sets host i up the way buedafab left it: the release dirs
// a and b cloned from the remote and checked out on a branch at the given
// releases, a virtualenv in each (unless venv is false for that dir),
// current -> cur, and nothing of magefab's.
func (f *testFleet) buedafabHost(t *testing.T, i int, cur string, a, b release.Target, venv map[string]bool) {
	t.Helper()
	root := f.root(i)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for d, rel := range map[string]release.Target{"a": a, "b": b} {
		dir := filepath.Join(root, d)
		git(t, root, "clone", "-q", f.remote, dir)
		git(t, dir, "reset", "-q", "--hard", rel.SHA)
		if venv[d] {
			if out, err := exec.Command(testPython(), "-m", "venv", "--without-pip", filepath.Join(dir, "env")).CombinedOutput(); err != nil {
				t.Fatalf("venv: %v\n%s", err, out)
			}
		}
	}
	if err := os.Symlink(cur, filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
}

func TestRollbackToAReleaseDeployedBeforeMagefab(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	f.opts.Requirements = nil
	ctx := context.Background()
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	both := map[string]bool{"a": true, "b": true}
	for i := range f.hosts {
		f.buedafabHost(t, i, "b", v1, v2, both)
	}

	// A dry run changes nothing, and says what the rollback will adopt.
	plans, err := fl.RollbackPlan(ctx)
	if err != nil || len(plans) != 2 || plans[0].Dir != "a" || plans[0].Release != "v0.1.0" {
		t.Fatalf("rollback dry run: %v %+v\n%s", err, plans, f.out.String())
	}
	if !strings.Contains(f.out.String(), "the first deploy or rollback adopts them") {
		t.Errorf("the dry run does not say what it would adopt:\n%s", f.out.String())
	}
	if _, err := os.Stat(filepath.Join(f.root(0), "revisions.log")); err == nil {
		t.Error("the dry run wrote revisions.log")
	}
	if _, err := os.Stat(filepath.Join(f.root(0), "a", "env", ".magefab-stamp")); err == nil {
		t.Error("the dry run wrote a stamp")
	}

	// The first rollback adopts both dirs, once per host, and goes back.
	f.out.Reset()
	res, err := fl.Rollback(ctx)
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, f.out.String())
	}
	f.assertOnBranch(t, "rollback", "a", v1.SHA)
	if res[0].Release != "v0.1.0" {
		t.Errorf("rollback result %+v, want v0.1.0", res[0])
	}
	if n := strings.Count(f.out.String(), "adopted the releases deployed before magefab: a: v0.1.0 ("+v1.SHA[:7]+"), b: v0.2.0 ("+v2.SHA[:7]+", live)"); n != 2 {
		t.Errorf("adoption said %d times, want once per host:\n%s", n, f.out.String())
	}
	log, _ := os.ReadFile(filepath.Join(f.root(0), "revisions.log"))
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "\tv0.1.0\t"+v1.SHA+"\ta\tadopted by tester@laptop rolling back") ||
		!strings.Contains(lines[1], "\tv0.2.0\t"+v2.SHA+"\tb\tadopted by ") || !strings.Contains(lines[2], "\tv0.1.0\t"+v1.SHA+"\ta\trollback") {
		t.Errorf("revisions.log:\n%s", log)
	}

	// Back and forth like any release that went live; nothing is adopted
	// again.
	f.out.Reset()
	if _, err := fl.Rollback(ctx); err != nil {
		t.Fatalf("second rollback: %v\n%s", err, f.out.String())
	}
	f.assertOnBranch(t, "second rollback", "b", v2.SHA)
	if strings.Contains(f.out.String(), "adopted") {
		t.Errorf("adopted again:\n%s", f.out.String())
	}

	// A deploy installs the requirements into the adopted virtualenv (its
	// stamp matches none), and a rollback goes back to the release
	// deployed before magefab.
	f.opts.Requirements = []string{"requirements.txt"}
	v3 := f.tag(t, "v0.3.0")
	res, err = fl.Deploy(ctx, v3)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, f.out.String())
	}
	f.assertOnBranch(t, "deploy", "a", v3.SHA)
	if !res[0].Installed {
		t.Errorf("deploy into the adopted dir did not install the requirements: %+v", res[0])
	}
	if _, err := fl.Rollback(ctx); err != nil {
		t.Fatalf("rollback after the deploy: %v\n%s", err, f.out.String())
	}
	f.assertOnBranch(t, "rollback after the deploy", "b", v2.SHA)
}

func TestDeployOverReleasesDeployedBeforeMagefab(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 1, "")
	f.opts.Requirements = nil
	ctx := context.Background()
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.buedafabHost(t, 0, "a", v1, v2, map[string]bool{"a": true, "b": true})
	v3 := f.tag(t, "v0.3.0")
	if _, err := fl.Deploy(ctx, v3); err != nil {
		t.Fatalf("deploy: %v\n%s", err, f.out.String())
	}
	f.assertOnBranch(t, "deploy", "b", v3.SHA)
	if n := strings.Count(f.out.String(), "adopted the releases deployed before magefab"); n != 1 {
		t.Errorf("adoption said %d times, want once:\n%s", n, f.out.String())
	}
	if _, err := fl.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v\n%s", err, f.out.String())
	}
	f.assertOnBranch(t, "rollback to the release deployed before magefab", "a", v1.SHA)
}

// A dir whose virtualenv does not run, or that magefab prepared itself,
// is not taken for a release that served.
func TestAdoptionKeepsRefusingWhatNeverServed(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	f.opts.Requirements = nil
	ctx := context.Background()
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.buedafabHost(t, 0, "b", v1, v2, map[string]bool{"b": true})
	f.buedafabHost(t, 1, "b", v1, v2, map[string]bool{"a": true, "b": true})
	os.WriteFile(filepath.Join(f.root(1), "a", "env", ".magefab-stamp"), []byte("0123\n"), 0o644)
	_, err := fl.Rollback(ctx)
	if !errors.Is(err, release.ErrNoPreviousRelease) || !strings.Contains(err.Error(), "h1") || !strings.Contains(err.Error(), "h2") {
		t.Fatalf("rollback: %v, want both hosts refused\n%s", err, f.out.String())
	}
	var nl *release.NeverLiveError
	if !errors.As(err, &nl) || nl.Release.Name != "v0.1.0" {
		t.Errorf("the dir magefab prepared: %v, want a NeverLiveError for v0.1.0", err)
	}
	if !strings.Contains(err.Error(), "virtualenv env is missing or incomplete") {
		t.Errorf("the dir without a virtualenv: %v", err)
	}
	f.assertOnBranch(t, "refused rollback", "b", v2.SHA)
	// The live dirs were adopted all the same: the log says what serves.
	for i := range f.hosts {
		log, _ := os.ReadFile(filepath.Join(f.root(i), "revisions.log"))
		if lines := strings.Split(strings.TrimSpace(string(log)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "\tv0.2.0\t"+v2.SHA+"\tb\tadopted by ") {
			t.Errorf("h%d: revisions.log:\n%s", i+1, log)
		}
	}
}

// Reset empties the buffer.
func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// assertOnBranch is assertAll for release dirs checked out on a branch,
// as buedafab left them: their commit is asked of git.
func (f *testFleet) assertOnBranch(t *testing.T, what string, dir, sha string) {
	t.Helper()
	f.assertAll(t, what, dir, "")
	for i := range f.hosts {
		if head := git(t, filepath.Join(f.root(i), dir), "rev-parse", "HEAD"); head != sha {
			t.Errorf("%s: h%d %s holds %s, want %s", what, i+1, dir, head, sha)
		}
	}
}
