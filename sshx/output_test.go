package sshx_test

import (
	"bytes"
	"testing"

	"github.com/magefab/magefab/sshx"
)

// TestConsoleQuiet checks that a quiet console drops the lines of Progress
// and keeps those of Println, and that it prints both again once it is not
// quiet.
func TestConsoleQuiet(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := sshx.NewConsole(&buf)
	c.Align("web1", "magefab")
	c.Progress("web1", "cloning")
	c.SetQuiet(true)
	if !c.Quiet() {
		t.Error("Quiet() = false after SetQuiet(true)")
	}
	c.Progress("web1", "installing requirements")
	c.Println("magefab", "preparing")
	c.Println("web1", "took over a stale lock")
	c.SetQuiet(false)
	c.Progress("web1", "restarting")
	want := "web1    | cloning\n" +
		"magefab | preparing\n" +
		"web1    | took over a stale lock\n" +
		"web1    | restarting\n"
	if got := buf.String(); got != want {
		t.Errorf("console wrote\n%s\nwant\n%s", got, want)
	}
}
