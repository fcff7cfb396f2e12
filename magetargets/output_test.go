package magetargets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/live"
	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
)

// failingVenvPython is a python3 whose venv module is missing.
const failingVenvPython = `#!/bin/sh
[ "$1" = -c ] && exit 0
echo "python3: No module named venv (from the test)" >&2
exit 1
`

// fleetProject is a project whose development environment is the
// in-process SSH hosts it names, each with a HOME of its own and the
// stand-ins of hostProject on its PATH; python3 fails to make a
// virtualenv on the hosts named in broken.
func fleetProject(t *testing.T, hosts []string, broken ...string) (repos, string) {
	t.Helper()
	rs, head, _ := fleetHosts(t, hosts, "", broken...)
	return rs, head
}

// fleetHosts is fleetProject that also returns the hosts' servers; the
// ssh_config gets more after the hosts' entries (a "Host *" block, say).
func fleetHosts(t *testing.T, hosts []string, more string, broken ...string) (repos, string, []*sshtest.Server) {
	t.Helper()
	rs := newRepos(t)
	clone := hostProject{repos: rs}
	head := clone.commitFiles(t, map[string]string{"manage.py": "# Django's manage.py\n"})
	servers, config := sshtestHosts(t, hosts, func(alias string, srv *sshtest.Server) {
		home, bin := t.TempDir(), t.TempDir()
		python := standInPython
		for _, b := range broken {
			if b == alias {
				python = failingVenvPython
			}
		}
		for name, body := range map[string]string{"python3": python, "pip": standInPip, "crontab": standInCrontab} {
			if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		srv.Dir = home
		srv.Env = []string{"HOME=" + home, "XDG_CACHE_HOME=", "PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin"}
	})
	if more != "" {
		testenv.AppendFile(t, config, more)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("VIRTUAL_ENV", "")
	configure(t, Config{
		Unit: "five", SCM: rs.remote, RootDir: rs.clone, Path: "app", Python: "python3", NoSudo: true,
		RestartCommand: "true",
		Timeouts:       Timeouts{Prepare: time.Minute, Switch: 30 * time.Second},
		SSH:            SSH{ConfigFile: config},
		Environments:   map[string]Environment{envDevelopment: {Hosts: hosts}},
	})
	t.Setenv(EnvVar, envDevelopment)
	return rs, head, servers
}

// phaseLine matches a phase's line of a summary's last frame.
func phaseLine(phase string, done, working, failed int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^%s +%d done +%d working +%d failed  \d+s$`, regexp.QuoteMeta(phase), done, working, failed))
}

// wantFrameLine fails the test unless a line of screen matches re.
func wantFrameLine(t *testing.T, screen []string, re *regexp.Regexp) {
	t.Helper()
	for _, l := range screen {
		if re.MatchString(l) {
			return
		}
	}
	t.Errorf("no line matches %s in:\n%s", re, strings.Join(screen, "\n"))
}

// TestSummaryOfADeploy deploys to three hosts with the live summary
// forced on (the output is no terminal): the hosts' step lines give way to
// the summary, whose last frame says that every host prepared and
// switched; the run's own lines are above it and the table below.
func TestSummaryOfADeploy(t *testing.T) {
	hosts := []string{"h1", "h2", "h3"}
	_, head := fleetProject(t, hosts)
	t.Setenv(OutputVar, OutputSummary)
	out := captureOut(t)
	if err := (Deploy{}).Commit(context.Background(), head); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	screen := live.Screen(out.String())
	wantFrameLine(t, screen, phaseLine("prepare", 3, 0, 0))
	wantFrameLine(t, screen, phaseLine("switch ", 3, 0, 0))
	text := strings.Join(screen, "\n")
	for _, h := range hosts {
		if regexp.MustCompile(`(?m)^` + h + ` +\| `).MatchString(out.String()) {
			t.Errorf("a step line of %s in the summary's output:\n%s", h, text)
		}
	}
	frame := strings.Index(text, "\nprepare ")
	deploying := strings.Index(text, "magefab | ")
	table := strings.Index(text, "\nhost ")
	if deploying < 0 || frame < 0 || table < 0 || !(deploying < frame && frame < table) {
		t.Errorf("want the run's lines, then the summary, then the table:\n%s", text)
	}
	if strings.Contains(text, "unfinished") || strings.Contains(text, "failed in") {
		t.Errorf("a host not done in the last frame:\n%s", text)
	}
}

// TestSummaryNamesAFailedHost deploys to three hosts, one of which cannot
// make a virtualenv: the last frame counts it as failed and prints its
// error in full, and the deploy's error names it.
func TestSummaryNamesAFailedHost(t *testing.T) {
	_, head := fleetProject(t, []string{"h1", "h2", "h3"}, "h2")
	t.Setenv(OutputVar, OutputSummary)
	out := captureOut(t)
	err := (Deploy{}).Commit(context.Background(), head)
	if err == nil {
		t.Fatalf("deploy with a broken host succeeded:\n%s", out)
	}
	var he *sshx.HostError
	if !errors.As(err, &he) || he.Host != "h2" {
		t.Fatalf("deploy error %v, want one of h2", err)
	}
	screen := live.Screen(out.String())
	text := strings.Join(screen, "\n")
	wantFrameLine(t, screen, phaseLine("prepare", 2, 0, 1))
	wantFrameLine(t, screen, phaseLine("unlock ", 3, 0, 0))
	want := "h2 failed in prepare: " + he.Err.Error()
	if !strings.Contains(text, want) || !strings.Contains(want, "No module named venv (from the test)") {
		t.Errorf("want %q in the last frame:\n%s", want, text)
	}
	if strings.Contains(text, "\nswitch") {
		t.Errorf("a host switched:\n%s", text)
	}
}

// TestOutputMode checks how the output is chosen: lines on anything but a
// terminal unless MAGEFAB_OUTPUT says summary, and an unknown value is an
// error that names the variable.
func TestOutputMode(t *testing.T) {
	for _, c := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{OutputLines, false},
		{OutputSummary, true},
	} {
		t.Setenv(OutputVar, c.value)
		got, err := liveSummary(os.Stdout) // not a terminal under go test
		if err != nil || got != c.want {
			t.Errorf("%s=%q: liveSummary = %v, %v; want %v", OutputVar, c.value, got, err, c.want)
		}
	}
	t.Setenv(OutputVar, "fancy")
	if _, err := liveSummary(os.Stdout); err == nil || !strings.Contains(err.Error(), OutputVar) || !strings.Contains(err.Error(), "fancy") {
		t.Errorf("%s=fancy: %v, want an error naming it", OutputVar, err)
	}
}

// TestLinesWithoutTerminal checks that a run whose output is no terminal
// prints each host's step lines as it always did, without the summary.
func TestLinesWithoutTerminal(t *testing.T) {
	_, head := fleetProject(t, []string{"h1", "h2"})
	t.Setenv(OutputVar, "")
	out := captureOut(t)
	if err := (Deploy{}).Commit(context.Background(), head); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	for _, h := range []string{"h1", "h2"} {
		if !regexp.MustCompile(`(?m)^` + h + ` +\| \d\d:\d\d:\d\d cloning `).MatchString(out.String()) {
			t.Errorf("no step line of %s:\n%s", h, out)
		}
	}
	if strings.Contains(out.String(), "\x1b[") || regexp.MustCompile(`(?m)^prepare +\d+ done`).MatchString(out.String()) {
		t.Errorf("a summary in output that is no terminal:\n%s", out)
	}
}
