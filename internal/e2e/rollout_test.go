package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/load"
	"github.com/magefab/magefab/release/haproxy/haproxytest"
)

// startFleetHAProxy runs a real HAProxy on 127.0.0.1 in front of the app
// on every fleet host (haproxytest: backend "app", a server per host,
// checked on /version). It returns the frontend's URL and the admin
// socket.
func startFleetHAProxy(t *testing.T, f fleettest.Fleet, port int) (url, sock string) {
	t.Helper()
	var servers []haproxytest.Server
	for _, h := range f.Hosts {
		servers = append(servers, haproxytest.Server{Name: h, Addr: fmt.Sprintf("%s:%d", f.Addr(t, h), port)})
	}
	front, b := haproxytest.Start(t, servers, haproxytest.Options{Path: "/version"})
	return "http://" + front + "/version", b.Socket
}

// A classic (restart) switch in batches of one host behind a real HAProxy:
// each host is drained out, restarted, checked and made ready again once
// HAProxy's check passes, and no request through HAProxy fails, in a
// deploy and a rollback. deploy:status and the dry run show it.
func TestRollingSwitchBehindHAProxy(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	p := e2e.NewProjectWith(t, f, f.Hosts, "", "", nil)
	env := []string{"MAGEFAB_SKIP_TESTS=1"}
	p.Tag(t, "v0.1.0")
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")

	url, sock := startFleetHAProxy(t, f, p.Port)
	p.SetConfig(t, fmt.Sprintf(`VersionURL: "http://{{.HostName}}:%d/version",
		Rollout: magetargets.Rollout{Canary: "1", Batch: "1", HAProxy: magetargets.HAProxy{Socket: %q, Backend: "app"}, BalancerTimeout: 60000000000},`, p.Port, sock))
	p.AddFiles(t, "v0.2.0", map[string]string{"CHANGES": "2\n"})
	p.Tag(t, "v0.2.0")
	sha2 := p.Git(t, "rev-parse", "HEAD")

	r := p.MustRun(t, append(env, "MAGEFAB_DRY_RUN=1"), "env:production", "deploy:tag", "v0.2.0")
	for _, want := range []string{"canary: web1; out of HAProxy backend \"app\"", "batch 2 of 2: web3"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("the dry run lacks %q:\n%s", want, r.Out)
		}
	}

	for _, step := range []struct {
		what string
		args []string
		sha  string
	}{
		{"deploy", []string{"env:production", "deploy:tag", "v0.2.0"}, sha2},
		{"rollback", []string{"env:production", "deploy:rollback"}, ""},
	} {
		run, err := load.Start(context.Background(), []load.Target{{Name: "haproxy", URL: url}}, load.Options{Rate: 100, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r := p.MustRun(t, env, step.args...)
		rep := run.Stop()
		t.Logf("%s in batches behind haproxy: %d requests, %d failed, p99 %s", step.what, rep.Requests, rep.Failed, rep.P99)
		if rep.Failed > 0 || rep.Requests < 50 {
			t.Errorf("%s: %d of %d requests failed: %v\n%s", step.what, rep.Failed, rep.Requests, rep.Failures, r.Out)
		}
		for _, want := range []string{"taking web1 out of HAProxy backend", "putting web3 back in HAProxy backend"} {
			if !strings.Contains(r.Out, want) {
				t.Errorf("%s: the output lacks %q:\n%s", step.what, want, r.Out)
			}
		}
		if step.sha != "" {
			assertServing(t, p, step.what, step.sha)
		}
	}
	r = p.MustRun(t, nil, "env:production", "deploy:status")
	if n := strings.Count(r.Out, "HAProxy backend \"app\": in service"); n != 3 {
		t.Errorf("deploy:status shows %d hosts in service, want 3:\n%s", n, r.Out)
	}
}
