package sshx

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"/var/webapps/five", "/var/webapps/five"},
		{"v0.1.1", "v0.1.1"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(id)", "'$(id)'"},
		{"v1;touch /tmp/x", "'v1;touch /tmp/x'"},
		{"A=b", "'A=b'"},
		{"~", "'~'"},
		{"-rf", "-rf"},
	} {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// shellEcho runs printf through /bin/sh with every value quoted, and returns
// what the shell passed on, one value per NUL-terminated field.
func shellEcho(t testing.TB, values ...string) []string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "printf '%s\\000' "+Join(values...)).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	fields := strings.Split(string(out), "\x00")
	return fields[:len(fields)-1]
}

var nasty = []string{
	"", " ", "'", `"`, "\\", "'\\''", "$HOME", "${HOME}", "$(id)", "`id`", "a;b", "a&&b", "a|b", "a>b", "<x",
	"*", "?", "[a]", "~", "~root", "#c", "!x", "a\nb", "\t", "-n", "--", "x=y", "%s", "é", "\xff\xfe",
	"v1;touch /tmp/magefab-pwned", strings.Repeat("'", 50), "\r\n", "a b  c",
}

func TestQuoteRoundTripThroughShell(t *testing.T) {
	t.Parallel()
	got := shellEcho(t, nasty...)
	if len(got) != len(nasty) {
		t.Fatalf("sh got %d arguments, want %d: %q", len(got), len(nasty), got)
	}
	for i := range nasty {
		if got[i] != nasty[i] {
			t.Errorf("sh -c printf %s = %q, want %q", Quote(nasty[i]), got[i], nasty[i])
		}
	}
}

// FuzzQuote checks that any bytes (except NUL, which no shell argument can
// hold) reach a command unchanged through /bin/sh.
func FuzzQuote(f *testing.F) {
	for _, s := range nasty {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("NUL cannot be passed in a shell argument")
		}
		got := shellEcho(t, s, "end")
		if len(got) != 2 || got[0] != s || got[1] != "end" {
			t.Fatalf("through sh %q came out as %q", s, got)
		}
		if !bytes.Equal([]byte(got[0]), []byte(s)) {
			t.Fatalf("bytes differ")
		}
	})
}

// TestEmbedInDoubleQuotes checks that a value embedded in a double-quoted
// string reaches the command as it is, inside the one word, without $(...),
// backquotes or quotes in it doing anything.
func TestEmbedInDoubleQuotes(t *testing.T) {
	t.Parallel()
	for _, s := range nasty {
		if strings.IndexByte(s, 0) >= 0 {
			continue
		}
		script := `printf '%s' "before ` + Embed(s) + ` after $HOME"`
		out, err := exec.Command("/bin/sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("sh -c %s: %v", script, err)
		}
		if want := "before " + s + " after " + os.Getenv("HOME"); string(out) != want {
			t.Errorf("sh -c %s printed %q, want %q", script, out, want)
		}
	}
}
