package magetargets

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/magefab/magefab/sshx"
)

func TestFetchLimitVar(t *testing.T) {
	for _, c := range []struct {
		value   string
		want    int
		set     bool
		wantErr bool
	}{
		{"", 0, false, false},
		{"0", 0, true, false},
		{"8", 8, true, false},
		{"-1", 0, false, true},
		{"eight", 0, false, true},
	} {
		t.Setenv(FetchLimitVar, c.value)
		got, set, err := FetchLimit()
		if got != c.want || set != c.set || (err != nil) != c.wantErr {
			t.Errorf("FetchLimit() with %s=%q = %v, %v, %v, want %v, %v, error %v", FetchLimitVar, c.value, got, set, err, c.want, c.set, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), FetchLimitVar) {
			t.Errorf("FetchLimit() with %s=%q = %v, want an error naming %s", FetchLimitVar, c.value, err, FetchLimitVar)
		}
	}
}

func TestDeliveryVar(t *testing.T) {
	for _, c := range []struct {
		value, want string
		wantErr     bool
	}{
		{"", "", false},
		{"pull", DeliverPull, false},
		{"push", DeliverPush, false},
		{"Push", "", true},
		{"rsync", "", true},
	} {
		t.Setenv(DeliveryVar, c.value)
		got, err := Delivery()
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("Delivery() with %s=%q = %q, %v, want %q, error %v", DeliveryVar, c.value, got, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "give pull") {
			t.Errorf("Delivery() with %s=%q = %v, want an error saying what to give", DeliveryVar, c.value, err)
		}
	}
}

// Bad Delivery and FetchLimit values are refused, naming the field and
// what to give.
func TestValidateDelivery(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"delivery", Config{Delivery: "scp"}, `Delivery: "scp" is not a delivery; give magetargets.DeliverPull`},
		{"environment delivery", Config{Environments: map[string]Environment{"production": {Delivery: "PUSH"}}}, `Environments["production"].Delivery: "PUSH" is not a delivery`},
		{"fetch limit", Config{FetchLimit: -2}, "FetchLimit: is -2; give how many hosts"},
	} {
		c.cfg.Unit, c.cfg.SCM = "five", "git@github.com:bueda/five.git"
		err := withDefaults(c.cfg).validate(true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: validate(true) = %v, want an error containing %q", c.name, err, c.want)
		}
	}
	for _, d := range []string{"", DeliverPull, DeliverPush} {
		cfg := withDefaults(Config{Unit: "five", SCM: "git@github.com:bueda/five.git", Delivery: d, FetchLimit: 4})
		if err := cfg.validate(true); err != nil {
			t.Errorf("validate(true) with Delivery %q, FetchLimit 4 = %v", d, err)
		}
	}
}

// The delivery of a deploy: MAGEFAB_DELIVERY, else the environment's,
// else the Config's, else pull; push sends from RootDir. The fleet gets
// FetchLimit, or MAGEFAB_FETCH_LIMIT when it is set.
func TestFleetDelivery(t *testing.T) {
	for _, c := range []struct {
		cfg, env, v string
		want        string // PushFrom
	}{
		{"", "", "", ""},
		{DeliverPush, "", "", "/project"},
		{DeliverPush, DeliverPull, "", ""},
		{"", DeliverPush, "", "/project"},
		{DeliverPush, DeliverPush, "pull", ""},
		{"", "", "push", "/project"},
	} {
		t.Setenv(DeliveryVar, c.v)
		cfg := withDefaults(Config{Unit: "five", SCM: "git@github.com:bueda/five.git", Delivery: c.cfg, RootDir: "/project",
			Environments: map[string]Environment{"production": {Hosts: []string{"web1"}, Delivery: c.env}}})
		got, err := cfg.pushFrom(cfg.Environments["production"])
		if err != nil || got != c.want {
			t.Errorf("Config.Delivery %q, Environment.Delivery %q, %s=%q: PushFrom %q, %v, want %q", c.cfg, c.env, DeliveryVar, c.v, got, err, c.want)
		}
	}

	t.Setenv(DeliveryVar, "")
	cfg := Config{Unit: "five", SCM: "git@github.com:bueda/five.git", FetchLimit: 6, RootDir: t.TempDir(),
		Environments: map[string]Environment{"production": {Hosts: []string{"web1"}}}}
	hosts := []sshx.Host{sshx.NewLocal("web1")}
	for _, c := range []struct {
		v    string
		want int
	}{{"", 6}, {"2", 2}, {"0", 0}} {
		t.Setenv(FetchLimitVar, c.v)
		fl, err := NewFleet(context.Background(), cfg, "production", hosts, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if fl.FetchLimit != c.want {
			t.Errorf("FetchLimit 6, %s=%q: the fleet's FetchLimit is %d, want %d", FetchLimitVar, c.v, fl.FetchLimit, c.want)
		}
	}
}
