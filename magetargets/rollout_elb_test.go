package magetargets

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/elb/elbtest"
	"github.com/magefab/magefab/sshx/sshtest"
)

// elbRollout is a fleet of four in-process SSH hosts, named as the
// instances 1 to 4 of an elbtest.Server (ec2Name), behind either the
// Classic load balancer "web" or the target group "tg"; each host serves
// v0.1.0 in release dir a, and v2 is a later commit to deploy.
type elbRollout struct {
	srv    *elbtest.Server
	cfg    Config
	homes  map[string]string // each host's HOME, by host
	hosts  []string
	out    *bytes.Buffer
	v1, v2 release.Target
}

// newELBRollout starts the fleet; env is the development environment's
// load balancer settings (LoadBalancer or TargetGroup), tweak may change
// the Config before the hosts get v0.1.0, all at once.
func newELBRollout(t *testing.T, env Environment, tweak func(*Config)) *elbRollout {
	t.Helper()
	awsTestEnv(t)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("VIRTUAL_ENV", "")
	e := &elbRollout{srv: elbtest.NewServer(), homes: map[string]string{}, out: captureOut(t)}
	t.Cleanup(func() {
		e.srv.Close()
		if err := e.srv.Err(); err != nil {
			t.Error(err)
		}
	})
	var ids []string
	var targets []elbtest.Target
	for n := 1; n <= 4; n++ {
		e.srv.AddInstance(elbtest.Instance{ID: instanceID(n), DNSName: ec2Name(n), PrivateDNSName: fmt.Sprintf("ip-10-0-0-%d.ec2.internal", n)})
		ids = append(ids, instanceID(n))
		targets = append(targets, elbtest.Target{ID: instanceID(n)})
		e.hosts = append(e.hosts, ec2Name(n))
	}
	e.srv.AddLoadBalancer("web", ids...)
	e.srv.AddTargetGroup(elbtest.TargetGroup{Name: "tg", Port: 8000}, targets...)

	rs := newRepos(t)
	bin := t.TempDir()
	for name, body := range map[string]string{"python3": standInPython, "pip": standInPip} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, sshConfig := sshtestHosts(t, e.hosts, func(alias string, srv *sshtest.Server) {
		home := t.TempDir()
		e.homes[alias] = home
		srv.Dir = home
		srv.Env = []string{"HOME=" + home, "XDG_CACHE_HOME=", "PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin"}
	})
	env.Hosts = nil
	e.cfg = withDefaults(Config{
		Unit: "five", SCM: rs.remote, RootDir: rs.clone, Path: "app",
		Python: filepath.Join(bin, "python3"), NoSudo: true, RestartCommand: "true",
		Timeouts:     Timeouts{Prepare: time.Minute, Switch: 30 * time.Second},
		SSH:          SSH{ConfigFile: sshConfig},
		AWS:          AWS{Endpoint: e.srv.URL},
		Environments: map[string]Environment{envDevelopment: env},
	})
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.v1 = release.Target{Name: "v0.1.0", SHA: rs.initial, Tag: "v0.1.0"}
	sha := commit(t, rs.clone, "second")
	git(t, rs.clone, "push", "-q", "origin", "master")
	e.v2 = release.Target{Name: "v0.1.0-1-g" + sha[:7], SHA: sha}

	fl := e.fleet(t)
	fl.Rollout = release.Rollout{}
	if _, err := fl.Deploy(t.Context(), e.v1); err != nil {
		t.Fatalf("first deploy, all at once: %v\n%s", err, e.out)
	}
	e.srv.TakeRequests()
	e.out.Reset()
	return e
}

// fleet is the development environment's fleet, its rollout as a run
// of the targets makes it.
func (e *elbRollout) fleet(t *testing.T) *release.Fleet {
	t.Helper()
	fl, err := NewFleet(t.Context(), e.cfg, envDevelopment, nil, e.out)
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// assertAll fails the test unless every host's current points at dir.
func (e *elbRollout) assertAll(t *testing.T, what, dir string) {
	t.Helper()
	for _, h := range e.hosts {
		l, _ := os.Readlink(filepath.Join(e.homes[h], "app", "releases", "current"))
		if l != dir {
			t.Errorf("%s: %s current -> %q, want %q", what, h, l, dir)
		}
	}
}

// moves lists each deregistration ("out") and registration ("in") the
// server was asked for, with the instances' numbers, in order, and the
// most instances out at once.
func moves(reqs []elbtest.Request) (seq []string, mostOut int) {
	out := map[string]bool{}
	for _, r := range reqs {
		var dir, prefix string
		switch r.Action {
		case "DeregisterInstancesFromLoadBalancer":
			dir, prefix = "out", "Instances.member.%d.InstanceId"
		case "RegisterInstancesWithLoadBalancer":
			dir, prefix = "in", "Instances.member.%d.InstanceId"
		case "DeregisterTargets":
			dir, prefix = "out", "Targets.member.%d.Id"
		case "RegisterTargets":
			dir, prefix = "in", "Targets.member.%d.Id"
		default:
			continue
		}
		var ns []string
		for i := 1; r.Params.Get(fmt.Sprintf(prefix, i)) != ""; i++ {
			id := r.Params.Get(fmt.Sprintf(prefix, i))
			ns = append(ns, strings.TrimLeft(strings.TrimPrefix(id, "i-"), "0"))
			out[id] = dir == "out"
		}
		seq = append(seq, dir+" "+strings.Join(ns, ","))
		n := 0
		for _, o := range out {
			if o {
				n++
			}
		}
		mostOut = max(mostOut, n)
	}
	return seq, mostOut
}

// A staged deploy behind a Classic load balancer and behind a target
// group: each stage is deregistered, switched and registered again, in
// stage order, never more than MaxOut out; every host ends on the new
// release and back in.
func TestRolloutThroughAWSBalancers(t *testing.T) {
	staged := func(c *Config) { c.Rollout = Rollout{Canary: "1", Batch: "2", MaxOut: 2} }
	for _, tc := range []struct {
		env  Environment
		name string
	}{
		{Environment{LoadBalancer: "web"}, `load balancer "web"`},
		{Environment{TargetGroup: "tg"}, `target group "tg"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newELBRollout(t, tc.env, staged)
			fl := e.fleet(t)
			if fl.Rollout.Balancer == nil || fl.Rollout.Balancer.Name() != tc.name {
				t.Fatalf("the rollout's balancer is %v, want %s", fl.Rollout.Balancer, tc.name)
			}
			// What the dry run and deploy:status print.
			plan := fl.Rollout.Plan(e.hosts)
			if len(plan) != 3 || !strings.HasPrefix(plan[0], "canary: "+ec2Name(1)+"; out of "+tc.name) {
				t.Errorf("plan %q", plan)
			}
			r := &fleetRun{hosts: fl.Hosts, fleet: fl}
			if st := r.balancerStates(t.Context()); len(st) != 4 || st[ec2Name(3)] != "in service" {
				t.Errorf("deploy:status states %v, want every host in service", st)
			}
			e.srv.TakeRequests()

			if _, err := fl.Deploy(t.Context(), e.v2); err != nil {
				t.Fatalf("deploy: %v\n%s", err, e.out)
			}
			e.assertAll(t, "after the rollout", "b")
			seq, most := moves(e.srv.Requests())
			want := []string{"out 1", "in 1", "out 2,3", "in 2,3", "out 4", "in 4"}
			if !slices.Equal(seq, want) {
				t.Errorf("the balancer was asked %q, want %q", seq, want)
			}
			if most > 2 {
				t.Errorf("%d hosts were out at once, more than MaxOut (2)", most)
			}
			if st := r.balancerStates(t.Context()); len(st) != 4 || slices.ContainsFunc(e.hosts, func(h string) bool { return st[h] != "in service" }) {
				t.Errorf("after the rollout: states %v, want every host in service", st)
			}
		})
	}
}

// A balancer that refuses to deregister stops the rollout before its
// stage switches; a host that never becomes healthy again fails its
// stage. Either way the whole fleet ends on the old release, every host
// registered.
func TestRolloutThroughAWSBalancersFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   Environment
		spoil func(e *elbRollout)
		want  []string
	}{
		{"classic refuses", Environment{LoadBalancer: "web"},
			func(e *elbRollout) { e.srv.Fail("DeregisterInstancesFromLoadBalancer", "AccessDenied") },
			[]string{"no host was switched", "AccessDenied"}},
		{"target group refuses", Environment{TargetGroup: "tg"},
			func(e *elbRollout) { e.srv.Fail("DeregisterTargets", "AccessDenied") },
			[]string{"no host was switched", "AccessDenied"}},
		{"classic never healthy", Environment{LoadBalancer: "web"},
			func(e *elbRollout) { e.srv.SetUnhealthy(instanceID(3), true) },
			[]string{"switched back", "not yet in service", ec2Name(3)}},
		{"target group never healthy", Environment{TargetGroup: "tg"},
			func(e *elbRollout) { e.srv.SetUnhealthy(instanceID(3), true) },
			[]string{"switched back", "not yet healthy", ec2Name(3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newELBRollout(t, tc.env, func(c *Config) {
				c.Rollout = Rollout{Canary: "1", Batch: "2", BalancerTimeout: 2 * time.Second}
			})
			tc.spoil(e)
			fl := e.fleet(t)
			_, err := fl.Deploy(t.Context(), e.v2)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("deploy error = %v, want it to contain %q", err, w)
				}
			}
			e.assertAll(t, "after the failed rollout", "a")
			if tc.env.LoadBalancer != "" {
				if got := registered(t, e.srv, "web"); len(got) != 4 {
					t.Errorf("registered after the failed rollout: %q, want all four", got)
				}
			} else if got, _ := e.srv.Targets("tg"); len(got) != 4 {
				t.Errorf("registered after the failed rollout: %v, want all four", got)
			}
			if strings.Contains(tc.name, "never healthy") && !strings.Contains(e.out.String(), ec2Name(3)+" is unhealthy in "+fl.Rollout.Balancer.Name()) {
				t.Errorf("the unhealthy host is not named before the rollout:\n%s", e.out)
			}
		})
	}
}

// A staged rollout through the environment's load balancer refuses what
// it cannot do, before any host is touched, and says what to change.
func TestRolloutThroughAWSBalancersRefuses(t *testing.T) {
	e := newELBRollout(t, Environment{LoadBalancer: "web"}, nil)
	env := e.cfg.Environments[envDevelopment]
	staged := e.cfg
	staged.Rollout = Rollout{Batch: "1"}
	for _, tc := range []struct {
		name  string
		c     Config
		env   Environment
		hosts []string
		want  []string
	}{
		{"a host not behind it", staged, env, []string{ec2Name(1), "web9.example.com"},
			[]string{"web9.example.com: not behind load balancer \"web\"", "register it with", "Config.Rollout.Canary nor Batch"}},
		{"HAProxy too", func() Config {
			c := staged
			c.Rollout.HAProxy = HAProxy{Socket: "/run/haproxy/admin.sock", Backend: "app"}
			return c
		}(), env, e.hosts,
			[]string{`has Environments["development"].LoadBalancer "web", and Config.Rollout.HAProxy is set too`, "empty Config.Rollout.HAProxy.Socket"}},
		{"unknown target group", staged, Environment{Name: envDevelopment, TargetGroup: "nope"}, e.hosts,
			[]string{`goes through Environments["development"].TargetGroup "nope"`, "not found in region us-east-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.fleetRollout(t.Context(), tc.env, tc.hosts, e.out)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
		})
	}
	// Neither Canary nor Batch: every host switches at once, and the load
	// balancer is left alone; one host is not taken out, and that is said.
	e.srv.TakeRequests()
	if r, err := e.cfg.fleetRollout(t.Context(), env, e.hosts, e.out); err != nil || r.Balancer != nil {
		t.Errorf("an all-at-once rollout: %+v, %v; want no balancer", r, err)
	}
	if r, err := staged.fleetRollout(t.Context(), env, e.hosts[:1], e.out); err != nil || r.Balancer != nil || !strings.Contains(e.out.String(), "the one host switches without being taken out of web") {
		t.Errorf("a rollout of one host: %+v, %v; printed\n%s", r, err, e.out)
	}
	if reqs := e.srv.Requests(); len(reqs) != 0 {
		t.Errorf("requests %q, want none", actions(reqs))
	}
	// Settings the configuration check refuses.
	for _, tc := range []struct {
		env  Environment
		r    Rollout
		want string
	}{
		{Environment{TargetGroup: "tg_1"}, Rollout{}, `Config.Environments["development"].TargetGroup: "tg_1" is not a target group; give its name`},
		{Environment{TargetGroup: "arn:aws:elasticloadbalancing:us-east-1:1234:targetgroup/tg/0"}, Rollout{}, `is not a target group`},
		{Environment{LoadBalancer: "web", TargetGroup: "tg"}, Rollout{}, `TargetGroup: "tg" is set, and so is LoadBalancer "web"`},
		{Environment{LoadBalancer: "web"}, Rollout{HAProxy: HAProxy{Socket: "/run/haproxy/admin.sock", Backend: "app"}}, "Config.Rollout.HAProxy is set, and neither Canary nor Batch"},
	} {
		c := withDefaults(Config{Unit: "five", Rollout: tc.r, Environments: map[string]Environment{envDevelopment: tc.env}})
		if err := c.validate(false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v, %+v: error = %v, want %q", tc.env, tc.r, err, tc.want)
		}
	}
	ok := withDefaults(Config{Unit: "five", Environments: map[string]Environment{envDevelopment: {TargetGroup: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/6d0ecf831eec9f09"}}})
	if err := ok.validate(false); err != nil {
		t.Errorf("a target group ARN: %v", err)
	}
}

// An environment's TargetGroup gives its hosts when Hosts is empty: every
// running target, healthy or not; one that is not is named.
func TestTargetGroupHosts(t *testing.T) {
	srv := elbFleet(t)
	srv.AddTargetGroup(elbtest.TargetGroup{Name: "tg"}, elbtest.Target{ID: instanceID(3)}, elbtest.Target{ID: instanceID(1)}, elbtest.Target{ID: instanceID(2)})
	srv.SetUnhealthy(instanceID(3), true)
	c, out := elbConfigure(t, srv, "", func(c *Config) {
		c.Environments["production"] = Environment{TargetGroup: "tg"}
	})
	got, err := resolveHosts(t.Context(), c, c.Environments["production"])
	if want := []string{ec2Name(1), ec2Name(3)}; err != nil || !slices.Equal(got, want) {
		t.Errorf("resolveHosts(production) = %q, %v; want the running targets %q", got, err, want)
	}
	if want := fmt.Sprintf("target group \"tg\" (production): %s is unhealthy; it is one of the hosts all the same", ec2Name(3)); !strings.Contains(out.String(), want) {
		t.Errorf("printed\n%s\nwant a line with %q", out, want)
	}
}
