//go:build linux

package sshtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A command starts with no signal ignored, as under sshd, even when the
// test process was started with SIGHUP and SIGINT ignored (nohup, a CI
// runner, a background job). The test runs itself again in such a
// process and reads the command's SigIgn mask.
func TestCommandsStartWithDefaultSignalDispositions(t *testing.T) {
	if os.Getenv("SSHTEST_IGNORING_CHILD") == "" {
		t.Parallel()
		// trap '' ignores the signals for the shell; exec passes that on.
		cmd := exec.Command("/bin/sh", "-c", `trap '' HUP INT PIPE TERM QUIT; exec "$0" -test.run='^TestCommandsStartWithDefaultSignalDispositions$' -test.v`, os.Args[0])
		cmd.Env = append(os.Environ(), "SSHTEST_IGNORING_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("the test under ignored signals failed: %v\n%s", err, out)
		}
		return
	}
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Output("grep '^SigIgn:' /proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "SigIgn:\t0000000000000000" {
		t.Errorf("the command started with %q, want no signal ignored", got)
	}
}
