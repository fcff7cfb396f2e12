//go:build mage

// The deploy targets of hello, a Tornado app.
package main

import (
	// mage:import
	"github.com/magefab/magefab/magetargets"
)

func init() {
	magetargets.Configure(magetargets.Config{
		Unit:               "hello",
		SCM:                "git@github.com:example/hello.git",
		SCMWebURL:          "https://github.com/example/hello",
		PipRequirements:    []string{"requirements/common.txt"},
		PipRequirementsDev: []string{"requirements/dev.txt"},
		TestRunner:         magetargets.Tornado,
		VersionURL:         "http://{{.HostName}}:8000/version",
		// Each release dir runs as its own process, a slot, started by
		// scripts/init.d/hello-slot: a deploy starts the new release
		// beside the live one, and the old one drains once every host
		// switched, so no request fails. The slots share port 8000
		// (SO_REUSEPORT); each also listens on a socket of its own, where
		// magefab asks /version before it counts on it.
		Slots: magetargets.Slots{
			Start: "/etc/init.d/hello-slot start {{.Dir}} {{.Slot}}",
			Stop:  "/etc/init.d/hello-slot stop {{.Dir}} {{.Slot}}",
			Check: "/version",
			Port:  8000,
		},
		DefaultEnvironment: "development",
		Environments: map[string]magetargets.Environment{
			"production":  {Hosts: []string{"web1.example.com", "web2.example.com"}},
			"staging":     {Hosts: []string{"staging.example.com"}},
			"development": {Hosts: []string{"dev.example.com"}},
		},
	})
}
