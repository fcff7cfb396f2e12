package sshx_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// patience bounds the waits of these tests for something that is due at
// once: a process that starts, a command that returns after a cancel. It
// fails a test only when the event never comes; a loaded machine (a
// shared 2-core CI runner, the race detector) may take seconds where a
// quiet one takes milliseconds. A test that proves something does not
// wait for a long thing makes that thing far longer than patience:
// longSleep, a host that never answers.
const patience = 30 * time.Second

// longSleep is the command line of a command that must be stopped: it
// would run for 300s, ten times patience, so one that ends within
// patience was stopped and did not just run out.
const longSleep = "sleep 300"

// waitUntil polls cond until it holds, failing the test when it has not
// held within patience.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// returnsWithin runs f and returns its error. It fails the test when f
// has not returned within limit: limit guards against a hang and is no
// speed requirement, so give one far above what f needs on a loaded
// machine and below what a regression would take.
func returnsWithin(t *testing.T, limit time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s has not returned after %s", what, limit)
		return nil
	}
}

// waitForPid waits for a command to write its pid to file and returns it.
func waitForPid(t *testing.T, file string) int {
	t.Helper()
	pid := 0
	waitUntil(t, "pid in "+file, func() bool {
		b, err := os.ReadFile(file)
		n, perr := strconv.Atoi(string(bytes.TrimSpace(b)))
		if err != nil || perr != nil || n <= 0 {
			return false
		}
		pid = n
		return true
	})
	return pid
}

// waitGone fails unless process pid has exited (or is a zombie) within
// patience. The processes the tests stop run longSleep.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("process %d still runs %s after cancel", pid, patience)
}
