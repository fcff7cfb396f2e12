package release_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/release"
)

// checks returns host i's checks by name, failing the test if the host
// could not be checked.
func checks(t *testing.T, hc []release.HostCheck, i int) map[string]release.Check {
	t.Helper()
	if hc[i].Err != nil {
		t.Fatalf("%s: %v", hc[i].Host, hc[i].Err)
	}
	m := map[string]release.Check{}
	for _, c := range hc[i].Checks {
		m[c.Name] = c
	}
	return m
}

func TestCheckChangesNothingAndSaysWhatToFix(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, fakeBin(t, map[string]string{"crontab": "#!/bin/sh\nexit 0\n"}))
	f.opts.Requirements = nil
	ctx := context.Background()
	fl := f.fleet()

	// Nothing deployed yet: every check passes, and nothing is created.
	hc := fl.Check(ctx)
	for i := range f.hosts {
		if hc[i].Failed() {
			t.Errorf("h%d before any deploy: %+v", i+1, hc[i])
		}
		c := checks(t, hc, i)
		for _, name := range []string{"sudo", "root", "git", "python", "restart", "current", "lock"} {
			if c[name].Status != release.CheckOK {
				t.Errorf("h%d: check %s = %+v, want ok", i+1, name, c[name])
			}
		}
		if !strings.Contains(c["root"].Text, "the first deploy creates it") {
			t.Errorf("h%d: root: %+v", i+1, c["root"])
		}
		if _, err := os.Stat(filepath.Join(f.homes[i], "app")); err == nil {
			t.Errorf("h%d: the check created the deploy root", i+1)
		}
	}

	// Deployed with a crontab; h2's live release loses it, h1 is locked,
	// and the restart command is not there.
	v1 := f.release(t, "v0.1.0", map[string]string{"crontab": "# none\n"})
	f.opts.Crontab, f.opts.CrontabUser = "crontab", "deploy"
	f.opts.Restart = "true"
	f.mustDeploy(t, fl, v1)
	os.Remove(filepath.Join(f.root(1), "a", "crontab"))
	os.Mkdir(filepath.Join(f.root(0), ".lock"), 0o755)
	os.WriteFile(filepath.Join(f.root(0), ".lock", "owner"), []byte("alice@desk deploying v0.0.9\n"), 0o644)
	f.opts.Restart = "/etc/init.d/no-such-app-here restart"
	before := f.tree(t)
	hc = fl.Check(ctx)
	if !hc[0].Failed() || !hc[1].Failed() {
		t.Fatalf("checks: %+v", hc)
	}
	c1, c2 := checks(t, hc, 0), checks(t, hc, 1)
	if c := c1["lock"]; c.Status != release.CheckFail || !strings.Contains(c.Text, "locked by alice@desk deploying v0.0.9") {
		t.Errorf("h1 lock: %+v", c)
	}
	if c := c2["crontab"]; c.Status != release.CheckFail || !strings.Contains(c.Text, "crontab file crontab is missing from the live release a") || c.Fix == "" {
		t.Errorf("h2 crontab: %+v", c)
	}
	if c := c1["crontab"]; c.Status != release.CheckOK {
		t.Errorf("h1 crontab: %+v", c)
	}
	for _, c := range []release.Check{c1["restart"], c2["restart"]} {
		if c.Status != release.CheckFail || !strings.Contains(c.Text, "/etc/init.d/no-such-app-here is not found") {
			t.Errorf("restart: %+v", c)
		}
	}
	if after := f.tree(t); after != before {
		t.Errorf("the check changed the hosts:\nbefore %s\nafter  %s", before, after)
	}
}

func TestCheckSaysWhatAFirstRunAdopts(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 1, "")
	f.opts.Requirements = nil
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.buedafabHost(t, 0, "b", v1, v2, map[string]bool{"b": true})
	before := f.tree(t)
	c := checks(t, fl.Check(context.Background()), 0)
	a := c["adopt"]
	if a.Status != release.CheckWarn || !strings.Contains(a.Text, "b v0.2.0 ("+v2.SHA[:7]+")") || !strings.Contains(a.Text, "not a, which holds v0.1.0: no env/bin/python") {
		t.Errorf("adopt: %+v", a)
	}
	if after := f.tree(t); after != before {
		t.Errorf("the check changed the host:\nbefore %s\nafter  %s", before, after)
	}
}

// tree lists every file under the hosts' deploy roots, with its size and
// mode, and where current points.
func (f *testFleet) tree(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := range f.hosts {
		filepath.Walk(filepath.Join(f.homes[i], "app"), func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().String() + "\n")
			}
			return nil
		})
		b.WriteString("current " + f.current(t, i) + "\n")
	}
	return b.String()
}
