package release_test

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/magefab/magefab/sshx"
)

// bytesSent is what this machine sent every host so far.
func (f *testFleet) bytesSent() int64 {
	var n int64
	for _, h := range f.hosts {
		n += h.(*sshx.Remote).Stats().BytesSent
	}
	return n
}

// With PushFrom, the hosts get the release from this machine: SCM is a
// path that exists nowhere, and every deploy still lands, in two sessions
// a host (once the hosts hold the scripts); a release after the first
// sends only what the hosts miss.
func TestPushDeploysWithoutTheGitServer(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	big := make([]byte, 256<<10) // incompressible: a whole bundle is at least this big
	rand.Read(big)
	os.WriteFile(filepath.Join(f.clone, "blob.bin"), big, 0o644)
	git(t, f.clone, "add", "blob.bin")
	f.opts.SCM = filepath.Join(t.TempDir(), "nowhere.git")
	f.opts.PushFrom = f.clone
	fl := f.fleet()

	v1 := f.tag(t, "v0.1.0")
	before := f.bytesSent()
	n := f.sessionsUsed(func() {
		if _, err := fl.Deploy(ctx, v1); err != nil {
			t.Fatalf("first deploy: %v\n%s", err, f.out.String())
		}
	})
	cold := f.bytesSent() - before
	f.assertAll(t, "first deploy", "a", v1.SHA)
	// Prepare and switch, and for each a session that stores its
	// script, new to the host: the second prepare session talks (pushes)
	// as the first would have.
	if n != 4 {
		t.Errorf("first deploy used %d sessions on a host, want 4: 2, and 2 that store the scripts", n)
	}
	if cold < int64(len(big))*2 {
		t.Errorf("first deploy sent %d bytes to 2 hosts, want at least the whole repository to each (%d)", cold, 2*len(big))
	}

	v2 := f.tag(t, "v0.2.0")
	if _, err := fl.Deploy(ctx, v2); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "second deploy", "b", v2.SHA)

	v3 := f.tag(t, "v0.3.0")
	before = f.bytesSent()
	n = f.sessionsUsed(func() {
		if _, err := fl.Deploy(ctx, v3); err != nil {
			t.Fatalf("third deploy: %v\n%s", err, f.out.String())
		}
	})
	warm := f.bytesSent() - before
	f.assertAll(t, "third deploy", "a", v3.SHA)
	if n != 2 {
		t.Errorf("a warm push used %d sessions on a host, want 2", n)
	}
	if warm > cold/3 {
		t.Errorf("a warm push sent %d bytes to 2 hosts: the bundle is not thin (the repository holds %d)", warm, len(big))
	}
	t.Logf("bytes sent to 2 hosts: first deploy %d, warm deploy %d", cold, warm)

	for i := range f.hosts {
		dir := filepath.Join(f.root(i), "a")
		if got := gitOut(t, dir, "config", "remote.origin.url"); got != f.opts.SCM {
			t.Errorf("h%d: origin %q, want SCM %q", i+1, got, f.opts.SCM)
		}
		if got := gitOut(t, dir, "describe", "--tags"); got != "v0.3.0" {
			t.Errorf("h%d: git describe says %q, want v0.3.0", i+1, got)
		}
	}
	if _, err := os.Stat(f.opts.SCM); err == nil {
		t.Errorf("%s exists", f.opts.SCM)
	}
}

// A push from a commit this machine does not have fails the host with
// what to do, before anything switches.
func TestPushOfAnUnknownCommitFails(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 1, "")
	f.opts.PushFrom = f.clone
	v1 := f.tag(t, "v0.1.0")
	v1.SHA = strings.Repeat("1", 40)
	_, err := f.fleet().Deploy(context.Background(), v1)
	if err == nil || !strings.Contains(err.Error(), "is not in the local repository") {
		t.Fatalf("deploy of a missing commit: %v", err)
	}
	if got := f.current(t, 0); got != "" {
		t.Errorf("current -> %q after a failed first deploy", got)
	}
}

// FetchLimit caps the hosts that fetch at once across the fleet, as the
// hosts see it: their git counts the clones and fetches running at once.
func TestFetchLimitHolds(t *testing.T) {
	t.Parallel()
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	count := t.TempDir()
	os.WriteFile(filepath.Join(count, "now"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(count, "max"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(count, "total"), []byte("0\n"), 0o644)
	path := fakeBin(t, map[string]string{"git": `#!/bin/sh
d=` + count + `
add() { ( flock 9; n=$(( $(cat "$d/now") + $1 )); echo "$n" > "$d/now"
  if [ "$n" -gt "$(cat "$d/max")" ]; then echo "$n" > "$d/max"; fi
  if [ "$1" -gt 0 ]; then echo $(( $(cat "$d/total") + 1 )) > "$d/total"; fi ) 9>"$d/lock"; }
case $1 in fetch|clone)
  add 1; sleep 0.4; ` + realGit + ` "$@"; s=$?; add -1; exit $s ;;
esac
exec ` + realGit + ` "$@"
`})
	const hosts, limit = 4, 2
	f := newTestFleet(t, hosts, path)
	fl := f.fleet()
	fl.Parallel, fl.FetchLimit = hosts, limit
	ctx := context.Background()
	for _, tag := range []string{"v0.1.0", "v0.2.0"} {
		v := f.tag(t, tag)
		if _, err := fl.Deploy(ctx, v); err != nil {
			t.Fatalf("deploy %s: %v\n%s", tag, err, f.out.String())
		}
	}
	f.assertAll(t, "two deploys", "b", "")
	read := func(name string) int {
		b, _ := os.ReadFile(filepath.Join(count, name))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	if most := read("max"); most < 1 || most > limit {
		t.Errorf("at most %d hosts fetched at once, want 1..%d", most, limit)
	}
	if total := read("total"); total != 2*hosts {
		t.Errorf("%d clones and fetches, want %d (one per host and deploy)", total, 2*hosts)
	}
	t.Logf("most fetches at once: %d (limit %d)", read("max"), limit)
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %s in %s: %v", strings.Join(args, " "), dir, err)
	}
	return strings.TrimSpace(string(out))
}
