package release

import (
	"context"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/shlint"
	"github.com/magefab/magefab/sshx"
)

// Every host script is valid sh for dash (Debian's /bin/sh), passes
// shellcheck as POSIX sh, and opens with a header that names its inputs.
// Each file is a part of a script that lib.sh opens: shellcheck sees it
// after lib.sh and the files its "# After:" line names, so that their
// helpers and variables are known, and every finding is reported.
func TestHostScriptsLint(t *testing.T) {
	t.Parallel()
	shlint.Lint(t, hostFS, "hostsh/*.sh", func(name string, text []byte) string {
		if name == "hostsh/lib.sh" {
			return string(text)
		}
		return hostSource(hostDeps(string(text))...) + string(text)
	})
}

// Every input a host script reads (MF_...) is named in its header.
func TestHostScriptsNameTheirInputs(t *testing.T) {
	t.Parallel()
	names, _ := fs.Glob(hostFS, "hostsh/*.sh")
	input := regexp.MustCompile(`MF_[A-Z0-9_]+`)
	for _, name := range names {
		text, _ := hostFS.ReadFile(name)
		var header []string
		inHeader := true
		for _, line := range strings.Split(string(text), "\n") {
			comment := strings.HasPrefix(strings.TrimSpace(line), "#")
			if !comment {
				inHeader = false
			}
			if inHeader {
				header = append(header, input.FindAllString(line, -1)...)
			} else if !comment {
				for _, v := range input.FindAllString(line, -1) {
					if !slices.Contains(header, v) {
						t.Errorf("%s reads %s, which its header does not name", name, v)
					}
				}
			}
		}
	}
}

// TestPhaseBytes logs what a host is sent for the phases of a deploy and
// a rollback: the script (and its files' size with their comments), its
// inputs, and the command line as a whole, inputs quoted.
func TestPhaseBytes(t *testing.T) {
	t.Parallel()
	o := &Options{
		Layout:  Layout{Path: "/var/webapps/five", ReleasesRoot: "releases", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: "env"},
		Restart: "/etc/init.d/five restart", RunID: "r1", Owner: "deployer", Sudo: true,
		Crontab: "deploy/crontab", CrontabUser: "deploy",
		Services: []string{"/etc/init.d/celeryd-five"}, Staged: []string{"/etc/init.d/celeryd-five"},
		Requirements: []string{"requirements.txt"},
	}
	t1, t2 := Target{Name: "v2", SHA: "2222222222222222222222222222222222222222"}, Target{Name: "v1", SHA: "1111111111111111111111111111111111111111"}
	sw := func(m switchMode) part {
		return switchParams{Mode: m, Host: "web1:22", Dir: "b", Prev: "a", Target: t1, Was: t2, What: "deploy"}.part(o)
	}
	phases := []struct {
		name string
		p    part
	}{
		{"prepare", phase(lockParams{Owner: "deployer deploying v2", Release: "v2"}.part(), venvPart(o), part{files: []string{"inspect", "after", "prepare"}, in: vars{
			"MF_PATH=" + o.Layout.Path, "MF_GROUP=", "MF_SCM=git@example.org:five.git",
			"MF_TARGET_NAME=v2", "MF_TARGET_SHA=" + t1.SHA, "MF_TARGET_SHORT=" + t1.Short(), "MF_CRONTAB=" + o.Crontab}})},
		{"switch forward", sw(forward)},
		{"rollback check", phase(lockParams{Owner: "deployer rolling back"}.part(), part{files: []string{"inspect", "after", "rollback"}, in: crontabVars(o)})},
		{"switch backward", phase(lockParams{Owner: "deployer rolling back", TakeOver: false}.part(), sw(backward))},
	}
	for _, ph := range phases {
		written := len(hostSource(ph.p.files...))
		// As runWith sets them.
		env := append(vars{"MF_ROOT=" + o.Layout.Root(), "MF_SUDO=1", "MF_RUN_ID=" + o.RunID, "MF_CURRENT=current",
			"MF_DIR0=a", "MF_DIR1=b", "MF_VENV=env"}, ph.p.in...)
		cmd := sshx.NewLocal("web1").Script(context.Background(), ph.p.script())
		cmd.Env = append(env, textVars(ph.p.texts)...)
		in := 0
		for _, kv := range cmd.Env {
			in += len(kv)
		}
		// A host that holds the scripts in its cache gets a stub.
		stub := sshx.NewLocal("web1").Script(context.Background(), hitStub(hostTextOf(ph.p.files...), ph.p.texts))
		stub.Env = env
		t.Logf("%-16s script %6d bytes (%6d as written), inputs %6d, command line %6d, from the cache %6d",
			ph.name, len(ph.p.script()), written, in, len(cmd.String()), len(stub.String()))
	}
}
