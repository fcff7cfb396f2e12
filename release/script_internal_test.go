package release

import (
	"fmt"
	"io/fs"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSwitchScriptsParse checks that every variant of the switch
// (forward, backward and recovery; sudo or not; with after-switch steps or
// without; with a previous release or not), including those the
// in-process tests do not run, is the same constant script, valid sh, and
// so is the detached part its trap runs with sh -c, which reaches the host
// as an input; and that the inputs are the variant.
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
	var text string
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
					sp := switchParams{Mode: mode, Host: "web1:22", Dir: "b", Prev: prev, Target: Target{Name: "v2", SHA: "2222"}, Was: Target{Name: "v1", SHA: "1111"}, What: "deploy"}
					p := sp.part(o)
					if mode != forward {
						p = phase(lockParams{Owner: "me", TakeOver: mode == recovery}.part(), p)
					}
					script := p.script()
					if text == "" {
						text = script
						parse(name, "switch script", script)
					} else if script != text {
						t.Errorf("%s: the script text differs from that of the other variants", name)
					}
					in := map[string]string{}
					for _, kv := range p.in {
						k, v, _ := strings.Cut(kv, "=")
						in[k] = v
					}
					if in["MF_MODE"] != mode.String() || in["MF_DIR"] != "b" || in["MF_PREV"] != prev || in["MF_RESTART"] != o.Restart {
						t.Errorf("%s: inputs %q", name, p.in)
					}
					if after && in["MF_SERVICES"] != strings.Join(o.Services, "\n") {
						t.Errorf("%s: MF_SERVICES = %q", name, in["MF_SERVICES"])
					}
					if len(p.texts) != 1 || p.texts[0].name != "MF_DETACHED" || p.texts[0].text.text != detachedScript() {
						t.Errorf("%s: MF_DETACHED is not the detached part", name)
					}
				}
			}
		}
	}
	parse("detached", "detached part", detachedScript())
}

// Every phase joins files that come after the files they use (see
// hostScript), and the whole is valid sh.
func TestPhasesParse(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	o := &Options{Layout: Layout{Path: "p", ReleasesRoot: "r", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: "env"}}
	phases := map[string]part{
		"prepare":   phase(lockParams{}.part(), venvPart(o), part{files: []string{"inspect", "after", "prepare"}}),
		"rollback":  phase(lockParams{}.part(), part{files: []string{"inspect", "after", "rollback"}}),
		"status":    {files: []string{"lock", "inspect", "slot", "status"}},
		"slotup":    {files: []string{"lock", "slot", "slotup"}},
		"slotdrain": {files: []string{"slot", "slotdrain"}},
		"plan":      {files: []string{"lock", "inspect", "after", "plan"}},
		"unlock":    {files: []string{"lock", "unlock"}},
		"orphan":    {files: []string{"lock", "unlock_orphan"}},
		"force":     {files: []string{"lock", "force_unlock"}},
		"restart":   phase(livePart(o), part{files: []string{"restart"}}),
		"maint":     phase(livePart(o), part{files: []string{"maintenance"}}),
		"manage":    {files: []string{"manage"}},
		"venv":      phase(venvPart(o), part{files: []string{"virtualenv"}}),
		"reinstall": phase(lockParams{}.part(), livePart(o), venvPart(o), part{files: []string{"reinstall"}}),
		"switch":    switchParams{}.part(o),
	}
	for name, p := range phases {
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(p.script())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v: %s", name, err, out)
		}
	}
}

// The exit statuses the scripts use are the ones the Go side reads: each
// "exit N # name" in hostsh/ names its constant.
func TestScriptExitCodes(t *testing.T) {
	t.Parallel()
	want := map[string]int{"exitLocked": exitLocked, "exitRestartFail": exitRestartFail, "exitCompFail": exitCompFail, "exitUndoFail": exitUndoFail}
	re := regexp.MustCompile(`exit (\d+);? (?:fi )?# (exit\w+)`)
	names, _ := fs.Glob(hostFS, "hostsh/*.sh")
	seen := map[string]bool{}
	for _, n := range names {
		text, _ := hostFS.ReadFile(n)
		for _, m := range re.FindAllStringSubmatch(string(text), -1) {
			code, ok := want[m[2]]
			if !ok || strconv.Itoa(code) != m[1] {
				t.Errorf("%s: exit %s # %s: want %d", n, m[1], m[2], code)
			}
			seen[m[2]] = true
		}
		for _, l := range strings.Split(string(text), "\n") {
			if regexp.MustCompile(`exit 7[5-9]`).MatchString(l) && !re.MatchString(l) {
				t.Errorf("%s: %q: an exit status the Go side reads is not named", n, l)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no script exits with %s", name)
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

func TestTagged(t *testing.T) {
	t.Parallel()
	sha := "6b4943c0123456789abcdef0123456789abcdef0"
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Name: "v0.1.0", SHA: sha}, "v0.1.0"},
		{Target{Name: "v0.1.0-3-g6b4943c", SHA: sha}, ""},
		{Target{Name: "6b4943c", SHA: sha}, ""},
		{Target{SHA: sha}, ""},
		{Target{Name: "v0.1.0-3-g6b4943c", SHA: sha, Tag: "v0.1.0-3-g6b4943c"}, "v0.1.0-3-g6b4943c"},
	} {
		if got := tagged(c.t).Tag; got != c.want {
			t.Errorf("tagged(%+v).Tag = %q, want %q", c.t, got, c.want)
		}
	}
}
