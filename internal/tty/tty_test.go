package tty

import (
	"bytes"
	"os"
	"testing"
)

func TestPaint(t *testing.T) {
	for _, c := range []struct {
		on       bool
		code, in string
		want     string
	}{
		{false, Red, "failed", "failed"},
		{true, Red, "failed", "\x1b[31mfailed\x1b[0m"},
		{true, Green, "a\nb\n", "\x1b[32ma\x1b[0m\n\x1b[32mb\x1b[0m\n"},
		{true, Bold, "", ""},
		{true, Bold, "\n", "\n"},
	} {
		if got := Paint(c.on, c.code, c.in); got != c.want {
			t.Errorf("Paint(%v, %q, %q) = %q, want %q", c.on, c.code, c.in, got, c.want)
		}
	}
}

func TestColor(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	var b bytes.Buffer
	if Color(&b) {
		t.Error("Color(a buffer) = true")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if Color(w) {
		t.Error("Color(a pipe) = true")
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no terminal to check against:", err)
	}
	defer tty.Close()
	if !Color(tty) {
		t.Error("Color(/dev/tty) = false")
	}
	t.Setenv("NO_COLOR", "1")
	if Color(tty) {
		t.Error("Color(/dev/tty) with NO_COLOR=1 = true")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if Color(tty) {
		t.Error("Color(/dev/tty) with TERM=dumb = true")
	}
}

func TestLive(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	t.Setenv("CI", "")
	var b bytes.Buffer
	if Live(&b) {
		t.Error("Live(a buffer) = true")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if Live(w) {
		t.Error("Live(a pipe) = true")
	}
	term := openTerminal(t)
	if !Live(term) {
		t.Error("Live(a terminal) = false")
	}
	if w, h := Size(term); w != 100 || h != 30 {
		t.Errorf("Size(a terminal of 100x30) = %d, %d", w, h)
	}
	if w, h := Size(&b); w != 0 || h != 0 {
		t.Errorf("Size(a buffer) = %d, %d, want 0, 0", w, h)
	}
	t.Setenv("NO_COLOR", "1")
	if !Live(term) || Color(term) {
		t.Errorf("with NO_COLOR=1: Live = %v, Color = %v; want a live terminal without colour", Live(term), Color(term))
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if Live(term) {
		t.Error("Live(a terminal) with TERM=dumb = true")
	}
	t.Setenv("TERM", "xterm")
	t.Setenv("CI", "true")
	if Live(term) {
		t.Error("Live(a terminal) with CI=true = true")
	}
}
