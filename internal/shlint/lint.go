// Package shlint checks the shell scripts a package embeds, for its tests.
package shlint

import (
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
)

// Lint checks every script of fsys that matches glob, for a package's
// tests: it opens with a header that names its inputs ("# Inputs"), is
// valid sh for dash (Debian's /bin/sh), and passes shellcheck as POSIX sh.
// shellcheck sees what context returns for a script: the script itself,
// or the script after the files it is run after, so that their functions
// and variables are known. Without dash or shellcheck the test skips, or
// fails under CI.
func Lint(t *testing.T, fsys fs.FS, glob string, context func(name string, text []byte) string) {
	t.Helper()
	names, err := fs.Glob(fsys, glob)
	if err != nil || len(names) == 0 {
		t.Fatalf("no scripts match %s (%v)", glob, err)
	}
	dash, derr := exec.LookPath("dash")
	shellcheck, serr := exec.LookPath("shellcheck")
	if derr != nil || serr != nil {
		fleettest.Unavailable(t, "dash or shellcheck is missing (Debian: apt-get install dash shellcheck)")
	}
	for _, name := range names {
		text, _ := fs.ReadFile(fsys, name)
		if !strings.HasPrefix(string(text), "# ") || !strings.Contains(string(text), "\n# Inputs") {
			t.Errorf("%s: no header naming its inputs (# Inputs ...)", name)
		}
		for _, c := range []struct {
			tool []string
			in   string
		}{
			{[]string{dash, "-n"}, string(text)},
			{[]string{shellcheck, "--shell=sh", "--severity=style", "-"}, context(name, text)},
		} {
			cmd := exec.Command(c.tool[0], c.tool[1:]...)
			cmd.Stdin = strings.NewReader(c.in)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %s: %v\n%s", name, c.tool[0], err, out)
			}
		}
	}
}
