package sshx_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/magefab/magefab/sshx"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := sshx.NewLocal("")
	dir := t.TempDir()
	cmd := l.Command(ctx, "sh", "-c", `printf '%s|%s|%s' "$(pwd)" "$GREETING" "$(cat)"`)
	cmd.Dir = dir
	cmd.Env = []string{"GREETING=it's $(not run)"}
	cmd.Stdin = strings.NewReader("from stdin")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if want := real + "|it's $(not run)|from stdin"; string(out) != want {
		t.Errorf("output = %q, want %q", out, want)
	}
	if s := l.Stats().Sessions; s != 1 {
		t.Errorf("Sessions = %d, want 1", s)
	}
}

func TestLocalExitError(t *testing.T) {
	t.Parallel()
	err := sshx.NewLocal("here").Script(context.Background(), "echo doomed >&2; exit 3").Run()
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *sshx.ExitError", err)
	}
	if ee.ExitStatus() != 3 || ee.Host != "here" || !bytes.Contains(ee.Stderr, []byte("doomed")) {
		t.Errorf("sshx.ExitError = %+v, want status 3 on host here with stderr", ee)
	}
	if !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "doomed") {
		t.Errorf("message %q lacks status or stderr", err)
	}
}

func TestLocalCancelKillsProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := sshx.NewLocal("").Script(ctx, longSleep+" & echo $! > "+sshx.Quote(pidFile)+"; wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := waitForPid(t, pidFile)
	cancel()
	// The command would run for 300s: a Wait that returns within
	// patience did not wait for it. (It returns as soon as the TERM has
	// stopped the process group, at most cancelGrace later.)
	err := returnsWithin(t, patience, "Wait after cancel", cmd.Wait)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	waitGone(t, pid)
}

func TestCmdRejectsBadEnvAndNUL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := sshx.NewLocal("")
	c := l.Command(ctx, "true")
	c.Env = []string{"BAD NAME=x"}
	if err := c.Run(); err == nil || !strings.Contains(err.Error(), "NAME=value") {
		t.Errorf("bad env name: err = %v", err)
	}
	if err := l.Command(ctx, "echo", "a\x00b").Run(); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("NUL: err = %v", err)
	}
	c = l.Command(ctx, "true")
	c.Run()
	if err := c.Run(); err == nil {
		t.Errorf("second Run of one Cmd succeeded")
	}
}

func TestCmdString(t *testing.T) {
	t.Parallel()
	c := sshx.NewLocal("").Command(context.Background(), "git", "reset", "--hard", "$(id)")
	c.Dir = "/var/webapps/my app"
	c.Env = []string{"DEPLOYMENT_TYPE=PRODUCTION"}
	c.Sudo = true
	want := `sudo -n -- /bin/sh -c 'cd '\''/var/webapps/my app'\'' && DEPLOYMENT_TYPE=PRODUCTION && export DEPLOYMENT_TYPE && git reset --hard '\''$(id)'\'''`
	if got := c.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestUploadLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dst := filepath.Join(dir, "conf file's")
	l := sshx.NewLocal("")
	if err := l.Upload(context.Background(), sshx.File{Path: dst, Mode: 0o640}, strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	if err := l.Upload(context.Background(), sshx.File{Path: dst, Mode: 0o600}, strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dst)
	st, _ := os.Stat(dst)
	if string(b) != "two" || st.Mode().Perm() != 0o600 {
		t.Errorf("file = %q mode %o, want %q mode 600", b, st.Mode().Perm(), "two")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only the file (no temporaries)", len(entries))
	}
	err := l.Upload(context.Background(), sshx.File{Path: filepath.Join(dir, "missing", "f")}, strings.NewReader("x"))
	if err == nil {
		t.Errorf("upload into a missing dir succeeded")
	}
}
