package release_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A host's script cache (see scriptcache.go), as the test fleet's hosts
// have it: in their HOME.
func (f *testFleet) scriptCache(i int) string {
	return filepath.Join(f.homes[i], ".cache", "magefab", "scripts")
}

// cachedScripts are the files in host i's script cache.
func (f *testFleet) cachedScripts(t *testing.T, i int) []string {
	t.Helper()
	entries, err := os.ReadDir(f.scriptCache(i))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, filepath.Join(f.scriptCache(i), e.Name()))
	}
	return files
}

// newStatusFleet is a test fleet of one host whose deploy root exists,
// so that Status finds it.
func newStatusFleet(t *testing.T) *testFleet {
	t.Helper()
	f := newTestFleet(t, 1, "")
	if err := os.MkdirAll(f.root(0), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// status runs Status on h1, which must succeed, and returns the sessions
// it used and the command lines h1's server received.
func (f *testFleet) status(t *testing.T) (sessions int64, cmds []string) {
	t.Helper()
	before := len(f.servers[0].Commands())
	sessions = f.sessionsUsed(func() {
		st := f.fleet().Status(context.Background(), 2)
		if st[0].Err != nil {
			t.Fatalf("status: %v\n%s", st[0].Err, f.out.String())
		}
	})
	return sessions, f.servers[0].Commands()[before:]
}

// The status phase's script holds lock.sh, which defines lock_read: a
// command line that holds it carries the script.
const inScript = "lock_read()"

// stub says whether a command line is a stub, without the script.
func stub(cmd string) bool { return len(cmd) < 4<<10 && !strings.Contains(cmd, inScript) }

// A phase new to a host costs one more session, which stores its script;
// from then on a session sends the host a short stub.
func TestScriptCacheStoresOnceThenSendsAStub(t *testing.T) {
	t.Parallel()
	f := newStatusFleet(t)
	n, cmds := f.status(t)
	if n != 2 || len(cmds) != 2 {
		t.Fatalf("a phase new to the host used %d sessions (%d commands), want 2: the stub, then the script stored", n, len(cmds))
	}
	if !stub(cmds[0]) || stub(cmds[1]) {
		t.Errorf("command lines of %d and %d bytes: want the stub, then the script", len(cmds[0]), len(cmds[1]))
	}
	files := f.cachedScripts(t, 0)
	if len(files) != 1 {
		t.Fatalf("the cache holds %v, want the status script", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Size() < 10<<10 || fi.Mode().Perm() != 0o600 {
		t.Errorf("the cached script: %v, %v; want a whole script, mode 0600", fi, err)
	}
	if di, err := os.Stat(f.scriptCache(0)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("the cache: %v, %v; want mode 0700", di, err)
	}
	for range 2 {
		n, cmds = f.status(t)
		if n != 1 || len(cmds) != 1 || !stub(cmds[0]) {
			t.Fatalf("a phase the host holds used %d sessions, commands of %d bytes; want one stub", n, len(cmds[0]))
		}
	}
	t.Logf("command line: %d bytes, then %d", len(f.servers[0].Commands()[1]), len(cmds[0]))
}

// statusStored runs the status phase on a fresh fleet and returns the
// host's cache: the status script alone.
func (f *testFleet) statusStored(t *testing.T) []string {
	t.Helper()
	f.status(t)
	files := f.cachedScripts(t, 0)
	if len(files) != 1 {
		t.Fatalf("the cache holds %v, want the status script", files)
	}
	return files
}

// A cached script removed, or changed, before a run is stored again, and
// the phase runs all the same.
func TestScriptCacheFileLostBetweenRuns(t *testing.T) {
	t.Parallel()
	f := newStatusFleet(t)
	files := f.statusStored(t)
	want, _ := os.ReadFile(files[0])
	for _, lose := range []struct {
		what string
		do   func() error
	}{
		{"removed", func() error { return os.Remove(files[0]) }},
		{"cut short", func() error { return os.WriteFile(files[0], want[:len(want)/2], 0o600) }},
		{"overwritten", func() error { return os.WriteFile(files[0], []byte("echo magefab:error corrupted; exit 1\n"), 0o600) }},
	} {
		if err := lose.do(); err != nil {
			t.Fatal(err)
		}
		f.reconnect(t)
		if n, cmds := f.status(t); n != 2 || !stub(cmds[0]) || stub(cmds[1]) {
			t.Errorf("%s: the next run used %d sessions, want 2: the stub, then the script stored", lose.what, n)
		}
		if got, _ := os.ReadFile(files[0]); string(got) != string(want) {
			t.Errorf("%s: the script was not stored again", lose.what)
		}
		if n, cmds := f.status(t); n != 1 || !stub(cmds[0]) {
			t.Errorf("%s: then a phase used %d sessions, want one stub", lose.what, n)
		}
	}
}

// A host that loses a script this process stored there keeps nothing:
// it is sent the scripts inline from then on.
func TestScriptCacheFileLostDuringARun(t *testing.T) {
	t.Parallel()
	f := newStatusFleet(t)
	files := f.statusStored(t)
	os.Remove(files[0])
	if n, cmds := f.status(t); n != 2 || !stub(cmds[0]) || stub(cmds[1]) {
		t.Errorf("the phase after the loss used %d sessions, want 2: the stub, then the script", n)
	}
	if got := f.cachedScripts(t, 0); len(got) != 0 {
		t.Errorf("the script was stored again (%v): the host is sent it inline now", got)
	}
	for range 2 {
		if n, cmds := f.status(t); n != 1 || stub(cmds[0]) {
			t.Errorf("a phase used %d sessions, want 1, with the script inline", n)
		}
	}
}

// A host that cannot store the scripts runs its phases all the same, and
// is sent them inline once a store failed: it does not pay a session more
// each time.
func TestScriptCacheUnwritableHostGetsTheScriptsInline(t *testing.T) {
	t.Parallel()
	f := newStatusFleet(t)
	// mkdir -p fails, even for root.
	if err := os.WriteFile(filepath.Join(f.homes[0], ".cache"), []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, cmds := f.status(t); n != 2 || !stub(cmds[0]) || stub(cmds[1]) {
		t.Errorf("the first phase used %d sessions, want 2: the stub, then the script", n)
	}
	for range 2 {
		if n, cmds := f.status(t); n != 1 || stub(cmds[0]) {
			t.Errorf("a phase used %d sessions, want 1, with the script inline", n)
		}
	}
	// Another run finds out again, once.
	f.reconnect(t)
	if n, _ := f.status(t); n != 2 {
		t.Errorf("a new run's first phase used %d sessions, want 2", n)
	}
	if n, cmds := f.status(t); n != 1 || stub(cmds[0]) {
		t.Errorf("then a phase used %d sessions, want 1, with the script inline", n)
	}
}
