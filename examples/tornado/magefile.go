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
		DefaultEnvironment: "development",
		Environments: map[string]magetargets.Environment{
			"production":  {Hosts: []string{"web1.example.com", "web2.example.com"}},
			"staging":     {Hosts: []string{"staging.example.com"}},
			"development": {Hosts: []string{"dev.example.com"}},
		},
	})
}
