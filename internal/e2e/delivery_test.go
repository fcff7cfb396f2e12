package e2e_test

import (
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
)

// TestPushToHostsWithoutTheGitServer: with Delivery push, the hosts'
// SCM is a repository that exists nowhere, and every deploy still lands
// on every host: this machine sends the commits over SSH.
func TestPushToHostsWithoutTheGitServer(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	p := e2e.NewProject(t, f, f.Hosts, "")
	nowhere := "/srv/git/nowhere-" + p.Unit + ".git"
	p.AddFiles(t, "push", map[string]string{"magefile.go": e2e.Magefile(p.Unit, nowhere, p.Wheels, f.ConfigFile, f.Hosts, "", "Delivery: magetargets.DeliverPush,")})
	prod := []string{"MAGEFAB_SKIP_TESTS=1"}

	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	r := p.MustRun(t, prod, "env:production", "deploy:tag", "v0.1.0")
	assertServing(t, p, "first push", sha1)
	t.Logf("first push to %d hosts: %.1fs", len(f.Hosts), r.Took.Seconds())

	sha2 := p.Commit(t, "second")
	var conns, sess map[string]int
	conns, sess = sessions(f, func() {
		r = p.MustRun(t, append(prod, "MAGEFAB_TAG=v0.1.1"), "env:production", "deploy:commit", sha2[:7])
	})
	assertServing(t, p, "second push", sha2)
	assertSessions(t, "second push", conns, sess, 4)

	// A warm one: both dirs hold a clone, the new commit is all that
	// travels.
	sha3 := p.Commit(t, "third")
	conns, sess = sessions(f, func() {
		r = p.MustRun(t, append(prod, "MAGEFAB_TAG=v0.1.2"), "env:production", "deploy:commit", sha3[:7])
	})
	assertServing(t, p, "warm push", sha3)
	assertSessions(t, "warm push", conns, sess, 4)
	if !strings.Contains(r.Out, "v0.1.2 is now deployed to PRODUCTION") {
		t.Errorf("warm push output:\n%s", r.Out)
	}
	if _, err := os.Stat(nowhere); err == nil {
		t.Errorf("%s exists", nowhere)
	}
	noLocks(t, f, p, "after the pushes")
}

// countingGitServer serves /srv/git over smart HTTP with git
// http-backend, each git-upload-pack request taking at least delay, and
// counts those requests and the most in flight at once.
type countingGitServer struct {
	URL            string
	requests, most atomic.Int64
	now            atomic.Int64
}

func newCountingGitServer(t *testing.T, delay time.Duration) *countingGitServer {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		fleettest.Unavailable(t, "no git")
	}
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(cfg, []byte("[safe]\n\tdirectory = *\n"), 0o644)
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=/srv/git", "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=" + cfg, "GIT_CONFIG_NOSYSTEM=1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingGitServer{URL: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "git-upload-pack") || r.URL.Query().Get("service") == "git-upload-pack" {
			s.requests.Add(1)
			n := s.now.Add(1)
			defer s.now.Add(-1)
			for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
			}
			time.Sleep(delay)
		}
		backend.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// TestFetchLimitOnTheFleet: the hosts clone and fetch over HTTP from a
// slow git server, at most MAGEFAB_FETCH_LIMIT at once (it overrides
// Config.FetchLimit), as the server counts them.
func TestFetchLimitOnTheFleet(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	p := e2e.NewProject(t, f, f.Hosts, "")
	g := newCountingGitServer(t, 300*time.Millisecond)
	scm := g.URL + "/" + filepath.Base(p.Remote)
	p.AddFiles(t, "over http", map[string]string{"magefile.go": e2e.Magefile(p.Unit, scm, p.Wheels, f.ConfigFile, f.Hosts, "", "FetchLimit: 3,")})
	env := []string{"MAGEFAB_SKIP_TESTS=1", "MAGEFAB_FETCH_LIMIT=1"}

	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")
	assertServing(t, p, "first deploy", sha1)
	sha2 := p.Commit(t, "second")
	p.MustRun(t, append(env, "MAGEFAB_TAG=v0.1.1"), "env:production", "deploy:commit", sha2[:7])
	assertServing(t, p, "second deploy", sha2)

	if g.requests.Load() < int64(2*len(f.Hosts)) {
		t.Errorf("the git server got %d upload-pack requests, want at least %d (a clone and a fetch per host)", g.requests.Load(), 2*len(f.Hosts))
	}
	if m := g.most.Load(); m != 1 {
		t.Errorf("the git server served up to %d upload-pack requests at once, want 1 (MAGEFAB_FETCH_LIMIT=1)", m)
	}
	t.Logf("upload-pack requests: %d, most at once: %d", g.requests.Load(), g.most.Load())
}
