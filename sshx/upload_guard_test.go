package sshx

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The host side removes its temporary file even when the command's whole
// process group is killed with KILL, so that no trap in it can run: the
// receiving part runs in a session of its own, sees its input close and
// removes the file. This is the case of a host too slow to act on TERM
// before the KILL that follows.
func TestUploadGuardRemovesTheTemporaryAfterKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("old"), 0o644)
	u := &uploader{h: NewLocal(""), f: File{Path: dst}, mode: 0o644, tmp: filepath.Join(dir, ".f.guardtest")}
	cmd := exec.Command("/bin/sh", "-c", u.uploadScript(1<<20))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("partial"))
	waitFor(t, "the temporary file to appear", func() bool { _, err := os.Lstat(u.tmp); return err == nil })
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
	waitFor(t, "the receiving part to remove the temporary file", func() bool { _, err := os.Lstat(u.tmp); return os.IsNotExist(err) })
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("file = %q, want the old content", got)
	}
}

// A name that is taken is left alone: it is not this upload's file.
func TestUploadTakenTemporaryNameIsLeftAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	u := &uploader{h: NewLocal(""), f: File{Path: dst}, mode: 0o644, tmp: filepath.Join(dir, ".f.taken")}
	os.WriteFile(u.tmp, []byte("someone else's"), 0o600)
	u.src = &trackingReader{r: nil}
	cmd := exec.Command("/bin/sh", "-c", u.uploadScript(3))
	cmd.Stdin = nil
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != existsStatus {
		t.Fatalf("script = %v, want exit status %d", err, existsStatus)
	}
	if got, _ := os.ReadFile(u.tmp); string(got) != "someone else's" {
		t.Errorf("the taken name holds %q, want it untouched", got)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("the destination was written: %v", err)
	}
}

// waitFor polls cond until it holds; the deadline only catches an event
// that never comes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
