package release

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/magefab/magefab/sshx"
)

// TestSwitchScriptsParse checks that every variant of the switch script,
// including those the in-process tests do not run (sudo, several staged
// files and services), is valid sh, and so are the parts sh parses only
// when they run: the body of the trap for an interruption, and the script
// that trap runs detached with sh -c.
func TestSwitchScriptsParse(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	parse := func(name, what, script string) {
		t.Helper()
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %s: sh -n: %v: %s\n%s", name, what, err, out, script)
		}
	}
	layout := Layout{Path: "/var/webapps/five", ReleasesRoot: "releases", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: "env"}
	for _, sudo := range []bool{false, true} {
		for _, after := range []bool{false, true} {
			o := &Options{Layout: layout, Restart: "/etc/init.d/five restart 'it''s'", RunID: "r1", Owner: "o'wner", Sudo: sudo}
			if after {
				o.Crontab, o.CrontabUser = "deploy/cron tab", "deploy"
				o.Services = []string{"/etc/init.d/celeryd-five_PRODUCTION", "/etc/init.d/other $x"}
				o.Staged = []string{"/etc/init.d/celeryd-five_PRODUCTION", "/etc/x'y"}
			}
			for _, prev := range []string{"", "a", "b"} {
				for _, mode := range []switchMode{forward, backward, recovery} {
					name := fmt.Sprintf("sudo=%v after=%v prev=%q mode=%v", sudo, after, prev, mode)
					script, trapBody, detached := switchParts(o, "web1:22", "b", prev, Target{Name: "v2", SHA: "2222"}, Target{Name: "v1", SHA: "1111"}, "deploy", mode)
					parse(name, "switch script", prelude(layout)+script+lockReleaseScript("r1", "me", "v'2", 0)+lockOwnScript("r'1", "me", 0)+
						checkAfterSwitchScript(o)+rollbackCheckScript(o)+discardStagedScript(o, "web1")+unlockIDScript("r'1"))
					if (prev != "" || mode != forward) != (trapBody != "" && detached != "") {
						t.Errorf("%s: trap %q, detached %q", name, trapBody, detached)
					}
					if trapBody != "" {
						parse(name, "trap body", trapBody)
						// The trap as set, quoted, holds the body as it is.
						if !strings.Contains(script, "trap '"+strings.ReplaceAll(trapBody, "'", `'\''`)+"' TERM INT HUP PIPE\n") {
							t.Errorf("%s: the trap set does not hold its body", name)
						}
					}
					if detached != "" {
						parse(name, "detached script", detached)
						if !strings.Contains(trapBody, "setsid /bin/sh -c "+sshx.Quote(detached)+" ") {
							t.Errorf("%s: the trap does not run the detached script as it is", name)
						}
					}
				}
			}
		}
	}
}

func TestStagedPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ file, host, want string }{
		{"/etc/init.d/celeryd-five_PRODUCTION", "web1", "/etc/init.d/.celeryd-five_PRODUCTION.magefab-new.web1"},
		{"/etc/init.d/x", "deploy@web1:2222", "/etc/init.d/.x.magefab-new.deploy_web1_2222"},
		{"init.d/x", "h1", "init.d/.x.magefab-new.h1"},
		{"x", "h1", ".x.magefab-new.h1"},
	} {
		if got := StagedPath(c.file, c.host); got != c.want {
			t.Errorf("StagedPath(%q, %q) = %q, want %q", c.file, c.host, got, c.want)
		}
	}
	if got := asidePath("/etc/init.d/x", "web1"); got != "/etc/init.d/.x.magefab-previous.web1" {
		t.Errorf("asidePath = %q", got)
	}
}

func TestRedeployTarget(t *testing.T) {
	t.Parallel()
	sha := "6b4943c0123456789abcdef0123456789abcdef0"
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Name: "v0.1.0", SHA: sha}, "deploy:tag v0.1.0"},
		{Target{Name: "v0.1.0-3-g6b4943c", SHA: sha}, "deploy:commit " + sha},
		{Target{Name: "6b4943c", SHA: sha}, "deploy:commit " + sha},
		{Target{SHA: sha}, "deploy:commit " + sha},
	} {
		if got := redeployTarget(c.t); got != c.want {
			t.Errorf("redeployTarget(%+v) = %q, want %q", c.t, got, c.want)
		}
	}
}
