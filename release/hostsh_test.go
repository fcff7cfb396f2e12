package release

import (
	"io/fs"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
)

// Every host script is valid sh for dash (Debian's /bin/sh), passes
// shellcheck as POSIX sh, and opens with a header that names its inputs.
func TestHostScriptsLint(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(hostFS, "hostsh/*.sh")
	if err != nil || len(names) == 0 {
		t.Fatalf("no host scripts embedded (%v)", err)
	}
	dash, derr := exec.LookPath("dash")
	shellcheck, serr := exec.LookPath("shellcheck")
	if derr != nil || serr != nil {
		fleettest.Unavailable(t, "dash or shellcheck is missing (Debian: apt-get install dash shellcheck)")
	}
	for _, name := range names {
		text, _ := hostFS.ReadFile(name)
		if !strings.HasPrefix(string(text), "# ") || !strings.Contains(string(text), "\n# Inputs") {
			t.Errorf("%s: no header naming its inputs (# Inputs ...)", name)
		}
		cmd := exec.Command(dash, "-n")
		cmd.Stdin = strings.NewReader(string(text))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: dash -n: %v\n%s", name, err, out)
		}
		// Each file is a part of a script that lib.sh opens: shellcheck
		// sees it after lib.sh and the files its "# After:" line names,
		// so that their helpers and variables are known, and every
		// finding is reported.
		full := string(text)
		if name != "hostsh/lib.sh" {
			full = hostScript(hostDeps(full)...) + full
		}
		cmd = exec.Command(shellcheck, "--shell=sh", "--severity=style", "-")
		cmd.Stdin = strings.NewReader(full)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: shellcheck: %v\n%s", name, err, out)
		}
	}
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
