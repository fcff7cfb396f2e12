package magetargets_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/magefab/magefab/magetargets"
	"github.com/magefab/magefab/sshx"
)

// The project's magefile configures the targets once, in init; mage then
// runs them, e.g. mage env:production deploy:tag v0.1.1. Configure only
// records the configuration: each target checks it when it runs, and
// names every field that is wrong.
func ExampleConfigure() {
	magetargets.Configure(magetargets.Config{
		// Unit, the app's short name, is missing.
		SCM:             "git@github.com:bueda/five.git",
		PipRequirements: []string{"requirements/common.txt"},
		Environments: map[string]magetargets.Environment{
			"production": {Hosts: []string{"web1", "web2"}},
		},
	})
	// mage env:production deploy:status
	magetargets.Env{}.Production()
	err := magetargets.Deploy{}.Status(context.Background())
	first, rest, _ := strings.Cut(err.Error(), "\n")
	fmt.Println(first)
	fmt.Println(strings.HasPrefix(rest, "Config.Unit"))
	// Output:
	// magetargets: the configuration given to magetargets.Configure has 1 problem(s):
	// true
}

// NewFleet builds the release.Fleet that the targets deploy with, for a
// program that deploys without mage. Here its hosts are given; nil would
// reach the environment's hosts over SSH.
func ExampleNewFleet() {
	cfg := magetargets.Config{
		Unit:            "five",
		SCM:             "git@github.com:bueda/five.git",
		PipRequirements: []string{"requirements/common.txt"},
		Environments: map[string]magetargets.Environment{
			"staging": {Hosts: []string{"stage1"}, PathSuffix: "-staging"},
		},
	}
	hosts := []sshx.Host{sshx.NewLocal("stage1")}
	fleet, err := magetargets.NewFleet(context.Background(), cfg, "staging", hosts, io.Discard)
	if err != nil {
		fmt.Println(err)
		return
	}
	// fleet.Deploy(ctx, release.Target{...}) would deploy to the hosts.
	o := fleet.Options
	fmt.Println(o.Layout.Root(), o.Layout.Dirs, o.Layout.Current)
	fmt.Println(o.Requirements, o.Env, o.Restart, o.Sudo)
	// Output:
	// /var/webapps/five-staging/releases [a b] current
	// [requirements/common.txt] [DEPLOYMENT_TYPE=STAGING] /etc/init.d/five restart true
}
