//go:build mage

// The deploy targets of five, a Django app: the counterpart of buedafab's
// example fabfile, key for key.
package main

import (
	"os"

	// mage:import
	"github.com/magefab/magefab/magetargets"
	"github.com/magefab/magefab/release/notify"
)

func init() {
	magetargets.Configure(magetargets.Config{
		// A short name for the app, used in folder names and the init script.
		Unit: "five",
		// Deploy target on the servers (staging adds -staging); the
		// crontabs in scripts/crontab cd into it.
		Path: "/var/webapps/five",
		// What the servers clone, and its web view for compare links.
		SCM:       "git@github.com:bueda/five.git",
		SCMWebURL: "https://github.com/bueda/five",
		// Requirement files: everywhere, development only (tools such as
		// pylint), on the servers (gunicorn, which serves the app there).
		PipRequirements:           []string{"requirements/common.txt"},
		PipRequirementsDev:        []string{"requirements/dev.txt"},
		PipRequirementsProduction: []string{"requirements/production.txt"},
		// The settings file whose MAINTENANCE_MODE maint:enable and
		// maint:disable set.
		Settings: "five/settings.py",
		// Django: run migrations on deploy, once for the fleet.
		Migrate: true,
		// Celeryd: "scripts/init.d/celeryd" would render that template per
		// host into /etc/init.d/celeryd-five_<DEPLOYMENT_TYPE> and restart
		// it after each switch: set it once the app has a celery worker
		// (celery in requirements/common.txt, a broker in five/settings.py).
		//
		// Tests before every deploy, and in test:run.
		TestRunner: magetargets.Django,
		// The commit the app is serving, for the compare link and the check
		// after each deploy: {{.Subdomain}} is www., dev. or staging.
		VersionURL: "http://{{.Subdomain}}fivebybueda.com/version/",
		// gunicorn serves each release dir as a process of its own, a slot
		// (scripts/init.d/five-slot), on a unix socket that nginx proxies
		// to (scripts/nginx/five.conf): a deploy starts the new release
		// beside the live one and checks /version/ on its socket, the
		// switch of current moves nginx's traffic to it, and the old one
		// drains. No request fails.
		Slots: magetargets.Slots{
			Start: "/etc/init.d/five-slot start {{.Dir}} {{.Slot}}",
			Stop:  "/etc/init.d/five-slot stop {{.Dir}} {{.Slot}}",
			Check: "/version/",
		},
		// Deploy notifications: Airbrake (what Hoptoad became; AIRBRAKE_HOST
		// for an Airbrake-compatible service such as Errbit) and Campfire,
		// each only when its secret is set (see notifiers below).
		Notifiers: notifiers(),
		// Targets run without env:* work on development, the server any
		// developer deploys to at any time: mage deploy:rollback rolls
		// development back. Production is always named:
		// mage env:production deploy:rollback.
		DefaultEnvironment: "development",
		Environments: map[string]magetargets.Environment{
			// The running instances behind the "web" load balancer.
			"production": {LoadBalancer: "web", Crontab: "scripts/crontab/production"},
			"staging":    {Hosts: []string{"staging.bueda.com"}, Crontab: "scripts/crontab/staging"},
			// The development server gets sample data: five/fixtures/dev.json.
			"development": {Hosts: []string{"dev.bueda.com"}, Crontab: "scripts/crontab/development", Fixtures: []string{"dev"}},
		},
	})
}

// notifiers are the deploy notifications whose secrets this machine has:
// Airbrake with AIRBRAKE_PROJECT_KEY set, Campfire with
// CAMPFIRE_CHATBOT_URL set. Secrets come from the environment, never from
// the repository; a deploy without them notifies nobody and says nothing
// about it.
func notifiers() []notify.Notifier {
	var n []notify.Notifier
	if key := os.Getenv("AIRBRAKE_PROJECT_KEY"); key != "" {
		n = append(n, notify.Airbrake{ProjectID: 1, ProjectKey: key, Host: os.Getenv("AIRBRAKE_HOST")})
	}
	if url := os.Getenv("CAMPFIRE_CHATBOT_URL"); url != "" {
		n = append(n, notify.Campfire{URL: url})
	}
	return n
}
