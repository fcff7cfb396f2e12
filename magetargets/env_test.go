package magetargets

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCustomEnvironment shows how a project adds an environment, which
// has no env:* target, and selects it with MAGEFAB_ENV.
func TestCustomEnvironment(t *testing.T) {
	c := configure(t, Config{
		Unit: "five",
		SCM:  "git@github.com:bueda/five.git",
		Environments: map[string]Environment{
			"qa":         {Hosts: []string{"qa1", "deploy@qa2:2222"}, AllowNoTag: true},
			"production": {Hosts: []string{"web1", "web2"}},
		},
	})
	t.Setenv(EnvVar, "qa")

	e, err := selectedEnvironment(c)
	want := Environment{Name: "qa", DeploymentType: "QA", Hosts: []string{"qa1", "deploy@qa2:2222"}, AllowNoTag: true}
	if err != nil || !reflect.DeepEqual(e, want) {
		t.Fatalf("selectedEnvironment() with %s=qa = %+v, %v, want %+v, nil", EnvVar, e, err, want)
	}
	hosts, err := resolveHosts(context.Background(), c, e)
	if err != nil || !slices.Equal(hosts, want.Hosts) {
		t.Errorf("resolveHosts(qa) = %q, %v, want %q, nil", hosts, err, want.Hosts)
	}
	if err := c.validate(true); err != nil {
		t.Errorf("validate(true) = %v, want nil", err)
	}

	// An env:* target still wins over the variable.
	if err := (Env{}).Production(); err != nil {
		t.Fatalf("Env.Production() = %v", err)
	}
	if e, err := selectedEnvironment(c); err != nil || e.Name != "production" || e.Branch != "master" || !slices.Equal(e.Hosts, []string{"web1", "web2"}) {
		t.Errorf("selectedEnvironment() after env:production = %+v, %v, want production on web1, web2 from master", e, err)
	}
}

func TestEnvSelection(t *testing.T) {
	for _, c := range []struct {
		target   func(Env) error // the env:* target that ran, or nil
		variable string          // MAGEFAB_ENV
		def      string          // Config.DefaultEnvironment
		want     string          // the environment's name, or
		wantErr  []string        // parts of the error
	}{
		{target: Env.Localhost, want: "localhost"},
		{target: Env.Development, want: "development"},
		{target: Env.Staging, want: "staging"},
		{target: Env.Production, want: "production"},
		{target: Env.Staging, variable: "production", def: "development", want: "staging"},
		{variable: "production", def: "development", want: "production"},
		{def: "development", want: "development"},
		{wantErr: []string{
			"no environment selected, and none is guessed",
			"mage env:production <target>",
			"MAGEFAB_ENV",
			"one of: development, localhost, production, staging",
		}},
		{variable: "prod", wantErr: []string{`unknown environment "prod" (from MAGEFAB_ENV)`, "one of: development, localhost, production, staging"}},
		{def: "prod", wantErr: []string{`unknown environment "prod" (from Config.DefaultEnvironment)`}},
		{variable: "$(id)", wantErr: []string{`MAGEFAB_ENV="$(id)" is not an environment name`}},
	} {
		cfg := configure(t, Config{Unit: "five", DefaultEnvironment: c.def})
		resetSelection()
		t.Setenv(EnvVar, c.variable)
		call := "selectedEnvironment()"
		if c.target != nil {
			if err := c.target(Env{}); err != nil {
				t.Fatalf("env target = %v", err)
			}
			call += " after an env:* target"
		}
		e, err := selectedEnvironment(cfg)
		switch {
		case c.wantErr == nil && (err != nil || e.Name != c.want):
			t.Errorf("%s with %s=%q, DefaultEnvironment %q = %q, %v, want %q", call, EnvVar, c.variable, c.def, e.Name, err, c.want)
		case c.wantErr != nil && err == nil:
			t.Errorf("%s with %s=%q, DefaultEnvironment %q = %q, want an error", call, EnvVar, c.variable, c.def, e.Name)
		case c.wantErr != nil:
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s with %s=%q, DefaultEnvironment %q = %v, want an error containing %q", call, EnvVar, c.variable, c.def, err, w)
				}
			}
		}
	}
}

func resetSelection() {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.env = ""
}

// TestEnvTargets checks what mage needs of the Env namespace: value
// receivers only (a pointer receiver breaks every mage run), and targets
// that take nothing and return an error.
func TestEnvTargets(t *testing.T) {
	t.Parallel()
	value, pointer := reflect.TypeFor[Env](), reflect.TypeFor[*Env]()
	if value.NumMethod() != pointer.NumMethod() {
		t.Errorf("Env has %d methods with value receivers and %d in all, want none with a pointer receiver", value.NumMethod(), pointer.NumMethod())
	}
	var names []string
	for m := range value.Methods() {
		names = append(names, m.Name)
		if m.Type.String() != "func(magetargets.Env) error" {
			t.Errorf("Env.%s has type %s, want func(magetargets.Env) error", m.Name, m.Type)
		}
	}
	if want := []string{"Development", "Localhost", "Production", "Staging"}; !slices.Equal(names, want) {
		t.Errorf("Env methods = %q, want %q", names, want)
	}
}

func TestResolveHosts(t *testing.T) {
	// No AWS region anywhere: the load balancer case must fail before any
	// request, whatever the developer's shell holds.
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := context.Background()
	c := withDefaults(Config{
		Unit: "five",
		Environments: map[string]Environment{
			"production": {Hosts: []string{"web1", "web2"}},
			"qa":         {LoadBalancer: "qa-elb"},
		},
	})
	for _, tc := range []struct {
		env, override string
		want          []string
		wantErr       []string
	}{
		{env: "production", want: []string{"web1", "web2"}},
		{env: "production", override: "web3, deploy@web4:2222", want: []string{"web3", "deploy@web4:2222"}},
		{env: "staging", override: "stage1", want: []string{"stage1"}},
		{env: "localhost", want: nil},
		{env: "localhost", override: "web1", wantErr: []string{"MAGEFAB_HOSTS is set, but environment localhost runs on this machine"}},
		{env: "staging", wantErr: []string{"environment staging has no hosts", `Environments["staging"].Hosts`, "MAGEFAB_HOSTS"}},
		{env: "development", wantErr: []string{"environment development has no hosts"}},
		{env: "qa", wantErr: []string{"environment qa", `load balancer "qa-elb" is not configured`, `Environments["qa"].Hosts`}},
		{env: "production", override: "web1;id", wantErr: []string{`MAGEFAB_HOSTS="web1;id"`}},
	} {
		t.Setenv(HostsVar, tc.override)
		got, err := resolveHosts(ctx, c, c.Environments[tc.env])
		call := "resolveHosts(" + tc.env + ") with " + HostsVar + "=" + tc.override
		if tc.wantErr == nil {
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("%s = %q, %v, want %q, nil", call, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s = %q, nil, want an error", call, got)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s = %v, want an error containing %q", call, err, w)
			}
		}
	}
}

func TestBoolVars(t *testing.T) {
	for _, v := range []struct {
		name string
		get  func() (bool, error)
	}{
		{YesVar, Yes},
		{SkipTestsVar, SkipTests},
		{DryRunVar, DryRun},
		{ReinstallVar, Reinstall},
		{NoAutoRollbackVar, NoAutoRollback},
	} {
		for _, c := range []struct {
			value   string
			want    bool
			wantErr bool
		}{
			{"", false, false},
			{"1", true, false},
			{"true", true, false},
			{"YES", true, false},
			{"0", false, false},
			{"false", false, false},
			{"no", false, false},
			{"2", false, true},
			{"maybe", false, true},
			{" 1", false, true},
		} {
			t.Setenv(v.name, c.value)
			got, err := v.get()
			if got != c.want || (err != nil) != c.wantErr {
				t.Errorf("%s=%q: got %v, %v, want %v, error %v", v.name, c.value, got, err, c.want, c.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), v.name) {
				t.Errorf("%s=%q: error %v does not name the variable", v.name, c.value, err)
			}
		}
	}
}

func TestParallelVar(t *testing.T) {
	for _, c := range []struct {
		value   string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"1", 1, false},
		{"32", 32, false},
		{"0", 0, true},
		{"-4", 0, true},
		{"eight", 0, true},
		{"8.5", 0, true},
	} {
		t.Setenv(ParallelVar, c.value)
		got, err := Parallel()
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("Parallel() with %s=%q = %v, %v, want %v, error %v", ParallelVar, c.value, got, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), ParallelVar) {
			t.Errorf("Parallel() with %s=%q = %v, want an error naming %s", ParallelVar, c.value, err, ParallelVar)
		}
	}
}

func TestLockWaitVar(t *testing.T) {
	for _, c := range []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"90s", 90 * time.Second, false},
		{"5m", 5 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"90", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	} {
		t.Setenv(LockWaitVar, c.value)
		got, err := LockWait()
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("LockWait() with %s=%q = %v, %v, want %v, error %v", LockWaitVar, c.value, got, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), LockWaitVar) {
			t.Errorf("LockWait() with %s=%q = %v, want an error naming %s", LockWaitVar, c.value, err, LockWaitVar)
		}
	}
}

func TestLockLeaseVar(t *testing.T) {
	for _, c := range []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"2m", 2 * time.Minute, false},
		{"10s", 10 * time.Second, false},
		{"1h", time.Hour, false},
		{"9s", 0, true},
		{"0", 0, true},
		{"-2m", 0, true},
		{"120", 0, true},
		{"long", 0, true},
	} {
		t.Setenv(LockLeaseVar, c.value)
		got, err := LockLease()
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("LockLease() with %s=%q = %v, %v, want %v, error %v", LockLeaseVar, c.value, got, err, c.want, c.wantErr)
		}
		if err != nil && (!strings.Contains(err.Error(), LockLeaseVar) || !strings.Contains(err.Error(), "at least 10s")) {
			t.Errorf("LockLease() with %s=%q = %v, want an error naming %s and the shortest lease", LockLeaseVar, c.value, err, LockLeaseVar)
		}
	}
}

func TestHostsVar(t *testing.T) {
	for _, c := range []struct {
		value   string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"web1", []string{"web1"}, ""},
		{"web1,web2", []string{"web1", "web2"}, ""},
		{" web1 , deploy@10.0.0.5:2222,[::1]:22", []string{"web1", "deploy@10.0.0.5:2222", "[::1]:22"}, ""},
		{"web1,,web2", nil, "empty entry"},
		{"web1,", nil, "empty entry"},
		{"web1,web1", nil, "lists web1 twice"},
		{"-oProxyCommand=id", nil, "starts with '-'"},
		{"web1:99999", nil, "1..65535"},
		{"$(id)", nil, "no host name has"},
	} {
		t.Setenv(HostsVar, c.value)
		got, err := Hosts()
		switch {
		case c.wantErr == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("Hosts() with %s=%q = %q, %v, want %q, nil", HostsVar, c.value, got, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), HostsVar)):
			t.Errorf("Hosts() with %s=%q = %q, %v, want an error naming %s and containing %q", HostsVar, c.value, got, err, HostsVar, c.wantErr)
		}
	}
}

func TestStringVars(t *testing.T) {
	for _, c := range []struct {
		value   string
		wantErr bool
	}{
		{"", false},
		{"production", false},
		{"qa-2", false},
		{"q_a", false},
		{"pro duction", true},
		{"-x", true},
		{"../etc", true},
	} {
		t.Setenv(EnvVar, c.value)
		got, err := EnvName()
		if (err != nil) != c.wantErr || (err == nil && got != c.value) {
			t.Errorf("EnvName() with %s=%q = %q, %v, want error %v", EnvVar, c.value, got, err, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), EnvVar) {
			t.Errorf("EnvName() with %s=%q = %v, want an error naming %s", EnvVar, c.value, err, EnvVar)
		}
	}

	t.Setenv(TagVar, "v1.2.3")
	if got := ReleaseTag(); got != "v1.2.3" {
		t.Errorf("ReleaseTag() with %s=v1.2.3 = %q, want v1.2.3", TagVar, got)
	}
	t.Setenv(TagVar, "")
	if got := ReleaseTag(); got != "" {
		t.Errorf("ReleaseTag() with %s unset = %q, want \"\"", TagVar, got)
	}
}

// With no environment, the error offers the command that was run, in
// every environment, production first but chosen by nobody.
func TestNoEnvironmentOffersTheCommand(t *testing.T) {
	cfg := configure(t, Config{Unit: "five", Environments: map[string]Environment{"qa": {Hosts: []string{"qa1"}}}})
	resetSelection()
	t.Setenv(EnvVar, "")
	old := commandLine
	t.Cleanup(func() { commandLine = old })
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy:rollback"}, `magetargets: no environment selected, and none is guessed: run it in the one you mean, e.g.
  mage env:production deploy:rollback
  mage env:staging deploy:rollback
  mage env:development deploy:rollback
  mage env:localhost deploy:rollback
  MAGEFAB_ENV=qa mage deploy:rollback
or set MAGEFAB_ENV, or Config.DefaultEnvironment in the magefile, to one of: development, localhost, production, qa, staging`},
		{[]string{"deploy:tag", "v1.2.3", "deploy:status"}, `magetargets: no environment selected, and none is guessed: run it in the one you mean, e.g.
  mage env:production deploy:tag v1.2.3 deploy:status
  mage env:staging deploy:tag v1.2.3 deploy:status
  mage env:development deploy:tag v1.2.3 deploy:status
  mage env:localhost deploy:tag v1.2.3 deploy:status
  MAGEFAB_ENV=qa mage deploy:tag v1.2.3 deploy:status
or set MAGEFAB_ENV, or Config.DefaultEnvironment in the magefile, to one of: development, localhost, production, qa, staging`},
		{[]string{"deploy:commit", "it's"}, "  mage env:production deploy:commit 'it'\\''s'\n"},
	} {
		commandLine = func() []string { return c.args }
		_, err := selectedEnvironment(cfg)
		if err == nil || !strings.Contains(err.Error()+"\n", c.want) {
			t.Errorf("selectedEnvironment() run as %q: error =\n%v\nwant\n%s", c.args, err, c.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	old := os.Args
	t.Cleanup(func() { os.Args = old })
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"bin", "deploy:rollback"}, []string{"deploy:rollback"}},
		{[]string{"bin", "-v", "deploy:tag", "v1"}, []string{"deploy:tag", "v1"}},
		{[]string{"bin", "-test.v", "-test.run=X"}, nil},
		{[]string{"bin"}, nil},
		{[]string{"bin", "build"}, nil},
	} {
		os.Args = c.args
		if got := commandLine(); !slices.Equal(got, c.want) {
			t.Errorf("commandLine() with os.Args %q = %q, want %q", c.args, got, c.want)
		}
	}
}
