package magetargets

import (
	"strings"
	"testing"
	"unicode"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// fuzzFields are the settings FuzzConfigValue puts values in. Those marked
// plain must need no quoting once accepted: they reach templates (Path and
// Unit in RestartCommand, the release root in Celeryd's {{.Current}}) and
// the hosts' scripts bare.
var fuzzFields = []struct {
	name  string
	set   func(c *Config, v string)
	plain bool
}{
	{"Path", func(c *Config, v string) { c.Path = v }, true},
	{"PathSuffix", func(c *Config, v string) {
		c.Environments[envDevelopment] = Environment{Name: envDevelopment, DeploymentType: deployDev, PathSuffix: v}
	}, true},
	{"ReleasesRoot", func(c *Config, v string) { c.ReleasesRoot = v }, true},
	{"ReleaseDirs", func(c *Config, v string) { c.ReleaseDirs = []string{v, "b"} }, true},
	{"CurrentLink", func(c *Config, v string) { c.CurrentLink = v }, true},
	{"Virtualenv", func(c *Config, v string) { c.Virtualenv = v }, true},
	{"Unit", func(c *Config, v string) { c.Unit = v }, true},
	{"DeployUser", func(c *Config, v string) { c.DeployUser = v }, true},
	{"DeployGroup", func(c *Config, v string) { c.DeployGroup = v }, true},
	{"Python", func(c *Config, v string) { c.Python = v }, true},
	{"DeploymentType", func(c *Config, v string) {
		c.Environments[envDevelopment] = Environment{Name: envDevelopment, DeploymentType: v}
	}, true},
	{"LoadBalancer", func(c *Config, v string) {
		c.Environments[envDevelopment] = Environment{Name: envDevelopment, DeploymentType: deployDev, LoadBalancer: v}
	}, true},
	{"SCM", func(c *Config, v string) { c.SCM = v }, false},
}

// FuzzConfigValue checks Config.validate over the settings that name
// things on the hosts: a refused value gets an error that names a setting
// and shows the value safely; an accepted one is as plain as its setting
// promises, and the release layout of every environment built from it is
// valid too.
func FuzzConfigValue(f *testing.F) {
	seeds := []string{
		"/var/webapps/five", "app", "-staging", "releases", "a", "current", "env", "five", "deploy", "python3",
		"git@github.com:you/app.git", "https://github.com/you/app.git", "/srv/git/five.git",
		"v1;touch /tmp/x", "$(touch /tmp/x)", "`id`", "a|b", "a&&b", "a'b", `a"b`, "a b", "a\nb", "a\x00b",
		"../x", "a/../../x", "--upload-pack=touch /tmp/x", "-x", "", "\xff", "a:b", "a%b", "~", "/",
		"ext::sh -c touch% /tmp/x", "fd::17", "ssh://-oProxyCommand=x/y", "git@-oProxyCommand=x:y", "u@h:-x",
		strings.Repeat("v", 2000),
	}
	for i := range fuzzFields {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, field uint8, v string) {
		fd := fuzzFields[int(field)%len(fuzzFields)]
		c := withDefaults(Config{Unit: "five", SCM: "git@github.com:you/app.git", Path: "/var/webapps/five"})
		fd.set(&c, v)
		err := c.validate(true)
		if err != nil {
			msg := err.Error()
			for _, line := range strings.Split(msg, "\n") {
				if strings.ContainsFunc(line, unicode.IsControl) {
					t.Fatalf("%s=%q: error line %q holds a raw control character", fd.name, v, line)
				}
			}
			if !strings.Contains(msg, "Config.") || len(msg) > 1500 {
				t.Fatalf("%s=%q: error %q does not name a setting, or is too long", fd.name, v, msg)
			}
			return
		}
		if fd.plain && v != "" && sshx.Quote(v) != v {
			t.Fatalf("%s=%q was accepted, but a shell would interpret it (quoted: %s)", fd.name, v, sshx.Quote(v))
		}
		if fd.name != "PathSuffix" && strings.HasPrefix(v, "-") {
			t.Fatalf("%s=%q was accepted, but starts with '-'", fd.name, v)
		}
		if fd.name == "SCM" {
			checkSCM(t, v)
		}
		for name, env := range c.Environments {
			l := release.Layout{Path: c.envPath(env), ReleasesRoot: c.ReleasesRoot, Dirs: [2]string{c.ReleaseDirs[0], c.ReleaseDirs[1]}, Current: c.CurrentLink, Virtualenv: c.Virtualenv}
			if err := l.Validate(); err != nil {
				t.Fatalf("%s=%q was accepted, but the layout of %s is not valid: %v", fd.name, v, name, err)
			}
		}
		for _, name := range []string{c.ReleasesRoot, c.ReleaseDirs[0], c.ReleaseDirs[1], c.CurrentLink, c.Virtualenv} {
			if strings.ContainsAny(name, ":%") {
				t.Fatalf("%s=%q was accepted, but the layout name %q holds ':' or '%%', which the scripts use", fd.name, v, name)
			}
		}
	})
}

// checkSCM checks an accepted git URL: nothing a shell interprets inside
// double quotes, no transport that runs a command, and no SSH user, host
// or port that ssh would read as an option.
func checkSCM(t *testing.T, v string) {
	t.Helper()
	if strings.ContainsAny(v, "$`\"\\") || strings.ContainsFunc(v, unicode.IsControl) {
		t.Fatalf("SCM %q was accepted, but a shell interprets it inside double quotes", v)
	}
	lower := strings.ToLower(v)
	if strings.HasPrefix(lower, "ext::") || strings.HasPrefix(lower, "fd::") {
		t.Fatalf("SCM %q was accepted, but its transport runs a command", v)
	}
	var authority string
	if _, rest, ok := strings.Cut(v, "://"); ok {
		authority, _, _ = strings.Cut(rest, "/")
	} else if before, _, ok := strings.Cut(v, ":"); ok && !strings.Contains(before, "/") {
		authority = before
	}
	for _, part := range strings.FieldsFunc(authority, func(r rune) bool { return r == '@' || r == ':' }) {
		if strings.HasPrefix(part, "-") {
			t.Fatalf("SCM %q was accepted, but ssh would read %q as an option", v, part)
		}
	}
}
