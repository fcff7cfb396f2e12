package pypkg

import (
	"io/fs"
	"os/exec"
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
		for _, tool := range [][]string{{dash, "-n"}, {shellcheck, "--shell=sh", "--severity=style", "-"}} {
			cmd := exec.Command(tool[0], tool[1:]...)
			cmd.Stdin = strings.NewReader(string(text))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %s: %v\n%s", name, tool[0], err, out)
			}
		}
	}
}
