package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/magefab/magefab/magetargets"
	mfrelease "github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// The delivery comparison (-push): how a deploy's commits reach many
// hosts. magefab deploys a trivial app (the workspace's repository, no
// requirements, a restart that does nothing) to N hosts in three ways:
//
//	pull      every host fetches from the git server, Parallel (16) at once
//	pull-cap  the same with Config.FetchLimit (pushFetchLimit) fetches at once
//	push      Config.Delivery push: this process sends each host a git
//	          bundle of what it misses over its SSH connection; the hosts'
//	          SCM is a URL where nothing listens
//
// The git server is `git http-backend` served by this process on
// loopback, which counts the requests for git-upload-pack (the fetches'
// requests) and the most in flight at once. The deploys run in this
// process (magetargets.NewFleet on hosts of an sshx.Pool of its own), so
// that the pool's counters give the bytes this machine sent the hosts.
// Each run starts from empty hosts and deploys v0.1.0 (cold: a clone, or
// a whole bundle), v0.2.0 (the second release dir) and v0.3.0 (warm).

// pushFetchLimit is the pull-cap mode's FetchLimit.
const pushFetchLimit = 8

var pushModes = []string{"pull", "pull-cap", "push"}

// pushSample is one deploy of the comparison.
type pushSample struct {
	Hosts, Run       int
	Mode, Op         string
	Wall             float64 // seconds
	BytesSent        int64   // by this process to every host, SSH included
	GitRequests      int64   // git-upload-pack requests to the git server
	GitMaxInFlight   int64   // the most of them at once
	SessionsPerHost  float64 // mean SSH sessions a host
	ConnectionsTotal int64
	Err              string `json:",omitempty"`
}

// gitServer serves the repositories under root over smart HTTP, counting
// the upload-pack requests.
type gitServer struct {
	url      string
	srv      *http.Server
	requests atomic.Int64
	inFlight atomic.Int64
	most     atomic.Int64
}

func startGitServer(root string, env []string) (*gitServer, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gitServer{url: "http://" + ln.Addr().String()}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env:  append([]string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, env...),
	}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "git-upload-pack") || r.URL.Query().Get("service") == "git-upload-pack" {
			g.requests.Add(1)
			n := g.inFlight.Add(1)
			defer g.inFlight.Add(-1)
			for {
				m := g.most.Load()
				if n <= m || g.most.CompareAndSwap(m, n) {
					break
				}
			}
		}
		backend.ServeHTTP(w, r)
	})}
	go g.srv.Serve(ln)
	return g, nil
}

func (g *gitServer) close() { g.srv.Close() }

// pushing runs the delivery comparison on every host count of -push.
func (b *bench) pushing(ctx context.Context) error {
	g, err := startGitServer(b.w.srv, b.w.gitEnv)
	if err != nil {
		return fmt.Errorf("git server: %w", err)
	}
	defer g.close()
	unit := "bpu" + b.w.id
	defer b.f.onEach(context.WithoutCancel(ctx), slices.Max(b.o.push), "sudo -n rm -rf /var/webapps/"+unit, nil)
	runs := min(b.o.runs, 3)
	rel := b.w.releases
	var samples []pushSample
	for _, n := range b.o.push {
		for run := range runs {
			// The modes in a different order each run.
			modes := slices.Clone(pushModes)
			for range run {
				modes = append(modes[1:], modes[0])
			}
			for _, mode := range modes {
				if err := b.f.onEach(ctx, n, "sudo -n rm -rf /var/webapps/"+unit, nil); err != nil {
					return fmt.Errorf("cleaning the hosts: %w", err)
				}
				for i, op := range []string{"cold", "second", "warm"} {
					s := b.pushDeploy(ctx, g, unit, mode, n, run, op, rel[i])
					samples = append(samples, s)
					fmt.Fprintf(os.Stderr, "bench: push %d hosts run %d %-8s %-6s %6.2fs %9d bytes sent, %4d git requests (%d at once)%s\n",
						n, run+1, mode, op, s.Wall, s.BytesSent, s.GitRequests, s.GitMaxInFlight, errSuffix(s.Err))
					if s.Err != "" {
						b.failures = append(b.failures, fmt.Sprintf("push %s %s on %d hosts: %s", mode, op, n, s.Err))
						break
					}
				}
			}
		}
	}
	return b.pushReport(samples)
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": FAILED: " + e
}

// pushDeploy deploys r to web1..webN in mode and measures it.
func (b *bench) pushDeploy(ctx context.Context, g *gitServer, unit, mode string, n, run int, op string, r release) pushSample {
	s := pushSample{Hosts: n, Run: run, Mode: mode, Op: op}
	cfg := magetargets.Config{
		Unit:           unit,
		SCM:            g.url + "/app.git",
		Python:         "/usr/bin/python3",
		RestartCommand: "true",
		SSH:            magetargets.SSH{ConfigFile: b.f.sshConfig()},
		RootDir:        b.w.app,
		Environments:   map[string]magetargets.Environment{"production": {Hosts: hosts(n)}},
	}
	switch mode {
	case "pull-cap":
		cfg.FetchLimit = pushFetchLimit
	case "push":
		cfg.Delivery = magetargets.DeliverPush
		cfg.SCM = "http://127.0.0.1:1/nowhere.git" // nothing listens there
	}
	pool, err := sshx.NewPool(sshx.Config{ConfigFile: b.f.sshConfig(), ConnectTimeout: 30 * time.Second})
	if err != nil {
		s.Err = err.Error()
		return s
	}
	defer pool.Close()
	hs, err := pool.Hosts(hosts(n))
	if err != nil {
		s.Err = err.Error()
		return s
	}
	log, err := os.Create(filepath.Join(b.logs, fmt.Sprintf("push-%d-%d-%s-%s.log", n, run, mode, op)))
	if err != nil {
		s.Err = err.Error()
		return s
	}
	defer log.Close()
	fl, err := magetargets.NewFleet(ctx, cfg, "production", hs, log)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	req0 := g.requests.Load()
	g.most.Store(0)
	start := time.Now()
	_, err = fl.Deploy(ctx, mfrelease.Target{Name: r.Tag, SHA: r.SHA, Tag: r.Tag})
	s.Wall = time.Since(start).Seconds()
	var sessions int64
	for _, st := range pool.Stats() {
		s.BytesSent += st.BytesSent
		s.ConnectionsTotal += st.Connections
		sessions += st.Sessions
	}
	s.SessionsPerHost = float64(sessions) / float64(n)
	s.GitRequests, s.GitMaxInFlight = g.requests.Load()-req0, g.most.Load()
	if err == nil {
		err = b.liveCommit(ctx, n, unit, r.SHA)
	}
	if err != nil {
		s.Err = strings.ReplaceAll(err.Error(), "\n", " | ")
	}
	return s
}

// pushReport writes the comparison's medians to push.md in the output
// directory, and shows them.
func (b *bench) pushReport(samples []pushSample) error {
	type key struct {
		n        int
		mode, op string
	}
	groups := map[key][]pushSample{}
	for _, s := range samples {
		if s.Err == "" {
			k := key{s.Hosts, s.Mode, s.Op}
			groups[k] = append(groups[k], s)
		}
	}
	var md strings.Builder
	fmt.Fprintf(&md, "### Delivery at scale: pull, pull with FetchLimit %d, push\n\n", pushFetchLimit)
	md.WriteString("Medians of the runs; bytes are what the deploying process sent all the hosts over SSH; git requests are the git-upload-pack requests the git server got, and the most at once.\n\n")
	md.WriteString("| hosts | step | mode | wall s | MB sent | KB sent / host | git requests | most at once | sessions / host | runs |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range b.o.push {
		for _, op := range []string{"cold", "second", "warm"} {
			for _, mode := range pushModes {
				ss := groups[key{n, mode, op}]
				if len(ss) == 0 {
					continue
				}
				med := func(f func(pushSample) float64) float64 {
					v := make([]float64, len(ss))
					for i, s := range ss {
						v[i] = f(s)
					}
					slices.Sort(v)
					if len(v)%2 == 1 {
						return v[len(v)/2]
					}
					return (v[len(v)/2-1] + v[len(v)/2]) / 2
				}
				bytes := med(func(s pushSample) float64 { return float64(s.BytesSent) })
				fmt.Fprintf(&md, "| %d | %s | %s | %.2f | %.2f | %.1f | %.0f | %.0f | %.1f | %d |\n", n, op, mode,
					med(func(s pushSample) float64 { return s.Wall }), bytes/1e6, bytes/1e3/float64(n),
					med(func(s pushSample) float64 { return float64(s.GitRequests) }),
					med(func(s pushSample) float64 { return float64(s.GitMaxInFlight) }),
					med(func(s pushSample) float64 { return s.SessionsPerHost }), len(ss))
			}
		}
	}
	path := filepath.Join(b.o.out, "push.md")
	if err := os.WriteFile(path, []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: delivery comparison in %s\n%s", path, md.String())
	return nil
}
