package shtext

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
)

var stripTests = []struct {
	name, in, want string // want "" means in, unchanged
}{
	{"comment and blank lines", "# header\n\necho hi\n  # indented\n\t# tab\n \t \necho there\n", "echo hi\necho there\n"},
	{"#! line", "#!/bin/sh\n# c\necho\n", "#!/bin/sh\necho\n"},
	{"#! only first", "# c\n#!/bin/sh\necho\n", "echo\n"},
	{"comment after code", "echo hi # note\n", ""},
	{"# inside quotes", "echo '# not a comment' \"#x\"\n# c\n", "echo '# not a comment' \"#x\"\n"},
	{"# inside a word", "echo a#b 'c\n# in\n'\n", ""},
	{"# of expansions", "echo $# ${#x} ${x#y} ${x##*/} 'a\n# in\n'\n", ""},
	{"multi-line single quotes", "awk '\n# awk comment\n\n{ print }'\n# c\n", "awk '\n# awk comment\n\n{ print }'\n"},
	{"multi-line double quotes", "x=\"a\n  # in\n\n\"\n# c\n", "x=\"a\n  # in\n\n\"\n"},
	{"newline in quotes", "nl='\n' ifs0=$IFS\n\n# c\necho\n", "nl='\n' ifs0=$IFS\necho\n"},
	{"quote in a comment", "# it's\necho ok\n", "echo ok\n"},
	{"quote in a trailing comment", "echo a # it's\n# c\necho b\n", "echo a # it's\necho b\n"},
	{"quote in double quotes", "echo \"it's\" ' \" '\n# c\n", "echo \"it's\" ' \" '\n"},
	{"escaped quotes", "echo it\\'s \"a\\\"b\"\n# c\n", "echo it\\'s \"a\\\"b\"\n"},
	{"backslash in single quotes", "echo 'a\\'\n# c\n", "echo 'a\\'\n"},
	{"continued line", "echo a \\\n  # x\necho b\n\n", "echo a \\\n  # x\necho b\n"},
	{"continued blank line", "echo a \\\n\necho b\n", ""},
	{"here-document", "cat <<EOF\n# body\n\nEOF\n# c\n", ""},
	{"here-document, tabs", "cat <<-'EOF'\n\t# body\n\tEOF\n# c\n", ""},
	{"here-document in a function", "# c\nf() {\n  cat <<EOF\n# body\nEOF\n}\n", ""},
	{"quotes in a substitution in quotes", "x=\"$(echo \")\" '\n# in\n')\"\n# c\n", "x=\"$(echo \")\" '\n# in\n')\"\n"},
	{"arithmetic", "x=$(( (1 + 2) * 3 ))\n# c\n", "x=$(( (1 + 2) * 3 ))\n"},
	{"quotes in an expansion", "echo ${x:-'a\n# b\n'}\n# c\n", "echo ${x:-'a\n# b\n'}\n"},
	{"backquotes", "x=`echo '\n# in\n'`\n# c\n", "x=`echo '\n# in\n'`\n"},
	{"comment in a substitution", "x=$(\n  # c\n  echo a\n)\n# c\n", "x=$(\n  # c\n  echo a\n)\n"},
	{"case", "case $x in\n  # c\n  a) echo \"#\" ;; # d\n  *) ;;\nesac\n", "case $x in\n  a) echo \"#\" ;; # d\n  *) ;;\nesac\n"},
	{"no final newline", "echo a\n# c", "echo a\n"},
	{"unterminated quote", "echo 'a\n# c\n", ""},
	{"unterminated substitution", "x=$(echo a\n# c\n", ""},
	{"empty", "", ""},
	{"only comments", "# a\n\n# b\n", "-"},
}

func TestStrip(t *testing.T) {
	t.Parallel()
	for _, c := range stripTests {
		want := c.want
		switch want {
		case "":
			want = c.in
		case "-":
			want = ""
		}
		if got := Strip(c.in); got != want {
			t.Errorf("%s: Strip(%q) = %q, want %q", c.name, c.in, got, want)
		}
	}
}

// Strip keeps what the shell runs: bash reads each script in the table,
// and each host script of the repository, the same before and after (it
// prints a function made of it without the comments), and the stripped
// host scripts are valid sh for dash.
func TestStripKeepsTheCommands(t *testing.T) {
	t.Parallel()
	bash, berr := exec.LookPath("bash")
	dash, derr := exec.LookPath("dash")
	if berr != nil || derr != nil {
		fleettest.Unavailable(t, "bash or dash is missing")
	}
	printed := func(script string) string {
		t.Helper()
		cmd := exec.Command(bash, "-c", "eval \"f() {\n:\n$1\n}\" && declare -f f", "bash", script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v: %s\n%s", err, out, script)
		}
		return string(out)
	}
	check := func(name, script string) {
		t.Helper()
		stripped := Strip(script)
		if stripped == script {
			return
		}
		if a, b := printed(script), printed(stripped); a != b {
			t.Errorf("%s: bash reads the stripped script differently:\n%s\nthen:\n%s", name, a, b)
		}
	}
	for _, c := range stripTests {
		if !strings.HasPrefix(c.name, "unterminated") && !strings.HasPrefix(c.name, "here-document") {
			check(c.name, c.in)
		}
	}
	var files []string
	for _, dir := range []string{"../../release/hostsh", "../../release/pypkg/hostsh"} {
		names, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
		files = append(files, names...)
	}
	if len(files) == 0 {
		t.Fatal("no host scripts found")
	}
	for _, name := range files {
		text, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		stripped := Strip(string(text))
		if stripped == string(text) {
			t.Errorf("%s: nothing stripped", name)
		}
		check(name, string(text))
		cmd := exec.Command(dash, "-n")
		cmd.Stdin = strings.NewReader(stripped)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: dash -n on the stripped script: %v\n%s", name, err, out)
		}
	}
}
