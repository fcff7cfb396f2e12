package release

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magefab/magefab/sshx"
)

// startTalking starts, on this machine, a phase made of lock.sh, talk.sh
// and body, with MF_TALK=1 and its input the read end of a pipe; it
// returns the command and the pipe's write end. Each question the phase
// asks ("magefab:ask" on its output) gets the next of answers written to
// the pipe, one answer per question, as the deploying machine answers.
func startTalking(t *testing.T, dir, body string, answers []string, env ...string) (*sshx.Cmd, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	cmd := sshx.NewLocal("here").Script(context.Background(), hostScript("lock", "talk")+body)
	cmd.Dir = dir
	cmd.Env = append([]string{"MF_TALK=1", "MF_ROOT=" + dir, "MF_RUN_ID=run-1"}, env...)
	cmd.Stdin = r
	cmd.Stdout = &answerer{w: w, answers: answers}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, w
}

// answerer writes the next answer to w at each "magefab:ask" line
// written to it.
type answerer struct {
	mu      sync.Mutex
	w       io.Writer
	answers []string
	partial []byte
}

func (a *answerer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.partial = append(a.partial, p...)
	for {
		i := bytes.IndexByte(a.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(a.partial[:i])
		a.partial = a.partial[i+1:]
		if strings.HasPrefix(line, "magefab:ask") && len(a.answers) > 0 {
			if _, err := io.WriteString(a.w, a.answers[0]); err != nil {
				return len(p), err
			}
			a.answers = a.answers[1:]
		}
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}

// A phase that talks reads its input itself: when the input ends while it
// runs (the deploying machine is gone), the phase stops, as sshx stops a
// command without input.
func TestTalkingPhaseStopsWhenTheDeployingMachineGoes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, w := startTalking(t, dir, "touch started; sleep 30; touch finished\n", nil)
	waitFile(t, filepath.Join(dir, "started"))
	start := time.Now()
	w.Close()
	err := cmd.Wait()
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the phase ended with %v, want it stopped", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the phase stopped %s after its input ended", took)
	}
	if _, err := os.Stat(filepath.Join(dir, "finished")); err == nil {
		t.Error("the phase ran to its end after its input ended")
	}
}

// The answers reach the phase in the order it asks; a bundle's bytes
// land in a file, and the input's end after the phase exited stops
// nothing.
func TestTalkingPhaseReadsItsAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, w := startTalking(t, dir, `gate_take
talk_ask have "1 2"
cp "$talk_dir/bundle" got
gate_give
printf '%s\n' "$answer" > answered
`, []string{"go\n", "bundle 5\nhello"}, "MF_GATE=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the phase failed: %v", err)
	}
	w.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "got")); string(b) != "hello" {
		t.Errorf("the bundle received is %q, want hello", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "answered")); string(b) != "bundle 5\n" {
		t.Errorf("the answer read is %q, want bundle 5", b)
	}
}
