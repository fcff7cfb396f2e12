//go:build unix

package sshtest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// patience bounds the waits of these tests for something that is due at
// once: a process that starts or dies, a session that ends. It fails a
// test only when the event never comes; a loaded machine (a shared 2-core
// CI runner, the race detector) may take seconds where a quiet one takes
// milliseconds. A test that proves something does not wait for a long
// thing makes that thing far longer than patience: commands that sleep
// 300s, connections that never answer.
const patience = 30 * time.Second

// start returns a started server that is closed at the end of the test.
func start(t *testing.T, configure func(*sshtest.Server)) *sshtest.Server {
	t.Helper()
	srv := sshtest.NewUnstartedServer()
	if configure != nil {
		configure(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// dial connects to srv as user; the client is closed at the end of the test.
func dial(t *testing.T, srv *sshtest.Server, user string) *ssh.Client {
	t.Helper()
	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig(user))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

type result struct {
	stdout, stderr string
	err            error
}

// run runs cmd in a new session with the given stdin (none if empty).
func run(t *testing.T, client *ssh.Client, cmd, stdin string) result {
	t.Helper()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if stdin != "" {
		sess.Stdin = strings.NewReader(stdin)
	}
	err = sess.Run(cmd)
	return result{stdout.String(), stderr.String(), err}
}

// waitFor polls cond until it is true or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPID waits for a pid file written by a command and returns the pid.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, patience, "pid file "+filepath.Base(path), func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil && pid > 0
	})
	return pid
}

// alive reports whether process pid exists and is not a zombie waiting to
// be reaped by its parent.
func alive(pid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		_, rest, _ := strings.Cut(string(data), ") ")
		return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
	}
	return syscall.Kill(pid, 0) == nil
}

// pidCommand writes the shell's pid to name in the working directory
// atomically and then becomes `sleep 300`: ten times patience, so that
// a command that ends within patience was stopped.
func pidCommand(name string) string {
	return fmt.Sprintf("echo $$ > %[1]s.tmp && mv %[1]s.tmp %[1]s && exec sleep 300", name)
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *ssh.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v (%T) is not an *ssh.ExitError", err, err)
	}
	return ee.ExitStatus()
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "alice")

	r := run(t, client, "echo out; echo err >&2; exit 3", "")
	if r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("stdout %q, stderr %q; want %q, %q", r.stdout, r.stderr, "out\n", "err\n")
	}
	if got := exitStatus(t, r.err); got != 3 {
		t.Errorf("exit status %d, want 3", got)
	}

	r = run(t, client, "true", "")
	if r.err != nil {
		t.Errorf("true: %v", r.err)
	}
	if got := srv.Users(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("Users() = %q", got)
	}
	st := srv.Stats()
	if st.Accepted != 1 || st.Connections != 1 || st.Sessions != 2 || st.Execs != 2 || st.ActiveConnections != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestLargeOutput(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	r := run(t, client, "head -c 3000000 /dev/zero; head -c 1000000 /dev/zero >&2", "")
	if r.err != nil || len(r.stdout) != 3000000 || len(r.stderr) != 1000000 {
		t.Errorf("err %v, %d bytes stdout, %d bytes stderr", r.err, len(r.stdout), len(r.stderr))
	}
}

func TestDirAndEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := start(t, func(s *sshtest.Server) {
		s.Dir = dir
		s.Env = []string{"SSHTEST_FOO=from server", "SSHTEST_OVERRIDE=server"}
	})
	client := dial(t, srv, "u")

	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, kv := range [][2]string{{"SSHTEST_BAR", "from client"}, {"SSHTEST_OVERRIDE", "client"}} {
		if err := sess.Setenv(kv[0], kv[1]); err != nil {
			t.Fatalf("Setenv: %v", err)
		}
	}
	out, err := sess.Output(`pwd -P; echo "$SSHTEST_FOO"; echo "$SSHTEST_BAR"; echo "$SSHTEST_OVERRIDE"; echo "${SSH_CONNECTION%% *}"; echo "${HOME:+home set}"`)
	if err != nil {
		t.Fatalf("Output: %v", err)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{realDir, "from server", "from client", "client", "127.0.0.1", "home set"}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestDefaultDirRemoved(t *testing.T) {
	t.Parallel()
	srv := sshtest.NewServer()
	dir := srv.Dir
	if dir == "" {
		t.Fatal("Dir not set by Start")
	}
	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := run(t, client, "echo data > file && pwd -P", "")
	realDir, _ := filepath.EvalSymlinks(dir)
	if r.err != nil || r.stdout != realDir+"\n" {
		t.Errorf("pwd: %q, %v; want %q", r.stdout, r.err, realDir)
	}
	srv.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Dir %s still exists after Close: %v", dir, err)
	}
}

func TestStdin(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	r := run(t, client, "cat; echo done", "line one\nline two\n")
	if r.err != nil || r.stdout != "line one\nline two\ndone\n" {
		t.Errorf("got %q, %v", r.stdout, r.err)
	}

	// A command that ignores stdin completes although stdin stays open.
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	w, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out, err := sess.Output("echo ignored")
	if err != nil || string(out) != "ignored\n" {
		t.Errorf("got %q, %v", out, err)
	}
}

func TestStdinStreaming(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("while read line; do echo \"got $line\"; done"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, word := range []string{"a", "b"} {
		io.WriteString(stdin, word+"\n")
		n, err := io.ReadAtLeast(stdout, buf, len("got a\n"))
		if err != nil || string(buf[:n]) != "got "+word+"\n" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
	}
	stdin.Close()
	if err := sess.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

func TestCommandsRecorded(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	want := []string{"true", "echo 'a b'", "exit 1"}
	for _, c := range want {
		run(t, client, c, "")
	}
	got := srv.Commands()
	if !slices.Equal(got, want) {
		t.Errorf("Commands() = %q, want %q", got, want)
	}
	got[0] = "modified"
	if srv.Commands()[0] != "true" {
		t.Error("Commands() does not return a copy")
	}
	if st := srv.Stats(); st.Execs != 3 || st.Sessions != 3 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := start(t, func(s *sshtest.Server) {
		s.Env = []string{"FROM_SERVER=1"}
		s.Handler = func(e *sshtest.Exec) {
			in, _ := io.ReadAll(e.Stdin)
			fmt.Fprintf(e.Stdout, "cmd=%s user=%s in=%s", e.Command, e.User, in)
			fmt.Fprintf(e.Stderr, "requested=%q", e.RequestedEnv)
			if !slices.Contains(e.Env, "FROM_SERVER=1") || !slices.Contains(e.Env, "X=y") {
				fmt.Fprint(e.Stderr, " env missing")
			}
			switch e.Command {
			case "fail":
				e.Exit(7)
			case "kill":
				e.ExitSignal(ssh.SIGKILL)
			}
		}
	})
	client := dial(t, srv, "bob")

	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	sess.Setenv("X", "y")
	var stdout, stderr bytes.Buffer
	sess.Stdin, sess.Stdout, sess.Stderr = strings.NewReader("input"), &stdout, &stderr
	err = sess.Run("fail")
	if got := exitStatus(t, err); got != 7 {
		t.Errorf("exit status %d, want 7", got)
	}
	if stdout.String() != "cmd=fail user=bob in=input" || stderr.String() != `requested=["X=y"]` {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	r := run(t, client, "kill", "")
	var ee *ssh.ExitError
	if !errors.As(r.err, &ee) || ee.Signal() != "KILL" {
		t.Errorf("err %v, want exit signal KILL", r.err)
	}
}

func TestRespond(t *testing.T) {
	t.Parallel()
	srv := start(t, func(s *sshtest.Server) { s.Handler = sshtest.Respond("canned\n", 3) })
	r := run(t, dial(t, srv, "u"), "no such command", "ignored input")
	if r.stdout != "canned\n" || exitStatus(t, r.err) != 3 {
		t.Errorf("stdout %q, err %v; want the canned answer and status 3", r.stdout, r.err)
	}
	if c := srv.Commands(); len(c) != 1 || c[0] != "no such command" {
		t.Errorf("Commands() = %q", c)
	}
}

func TestShellHandlerFromCustomHandler(t *testing.T) {
	t.Parallel()
	srv := start(t, func(s *sshtest.Server) {
		s.Handler = func(e *sshtest.Exec) {
			e.Command = strings.ReplaceAll(e.Command, "hello", "goodbye")
			sshtest.ShellHandler(e)
		}
	})
	client := dial(t, srv, "u")
	r := run(t, client, "echo hello", "")
	if r.err != nil || r.stdout != "goodbye\n" {
		t.Errorf("got %q, %v", r.stdout, r.err)
	}
	if got := srv.Commands(); !slices.Equal(got, []string{"echo hello"}) {
		t.Errorf("Commands() = %q", got)
	}
}

func TestAgentForwarding(t *testing.T) {
	t.Parallel()
	srv := start(t, func(s *sshtest.Server) {
		s.Handler = func(e *sshtest.Exec) {
			if e.AgentSocket == "" {
				fmt.Fprint(e.Stdout, "no agent")
				return
			}
			if !slices.Contains(e.Env, "SSH_AUTH_SOCK="+e.AgentSocket) {
				fmt.Fprint(e.Stderr, "SSH_AUTH_SOCK not set")
				e.Exit(1)
				return
			}
			// Use the agent twice, to check that each connection gets
			// its own channel.
			for range 2 {
				conn, err := net.Dial("unix", e.AgentSocket)
				if err != nil {
					fmt.Fprint(e.Stderr, err)
					e.Exit(1)
					return
				}
				keys, err := agent.NewClient(conn).List()
				conn.Close()
				if err != nil {
					fmt.Fprint(e.Stderr, err)
					e.Exit(1)
					return
				}
				for _, k := range keys {
					fmt.Fprintln(e.Stdout, k.Comment, ssh.FingerprintSHA256(k))
				}
			}
		}
	})

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "test-key"}); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	line := "test-key " + ssh.FingerprintSHA256(signer.PublicKey()) + "\n"

	client := dial(t, srv, "u")
	if err := agent.ForwardToAgent(client, keyring); err != nil {
		t.Fatal(err)
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := agent.RequestAgentForwarding(sess); err != nil {
		t.Fatalf("RequestAgentForwarding: %v", err)
	}
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	out, err := sess.Output("list")
	if err != nil || string(out) != line+line {
		t.Errorf("output %q, err %v, stderr %q; want %q twice", out, err, stderr.String(), line)
	}

	// Without a request there is no agent.
	if r := run(t, client, "list", ""); r.stdout != "no agent" {
		t.Errorf("without forwarding: %q", r.stdout)
	}
	if st := srv.Stats(); st.AgentForwards != 1 || st.AgentChannels != 2 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestAgentForwardingShell(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	if err := agent.ForwardToAgent(client, agent.NewKeyring()); err != nil {
		t.Fatal(err)
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := agent.RequestAgentForwarding(sess); err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output(`test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK"`)
	if err != nil {
		t.Fatalf("Output: %q, %v", out, err)
	}
	sock := strings.TrimSpace(string(out))
	if fi, err := os.Stat(filepath.Dir(sock)); err == nil && fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", fi.Mode().Perm())
	}
	// The socket and its directory are removed when the session ends.
	waitFor(t, patience, "agent socket removal", func() bool {
		_, err := os.Stat(filepath.Dir(sock))
		return os.IsNotExist(err)
	})

	// Without forwarding, the server process's SSH_AUTH_SOCK is not
	// passed on.
	r := run(t, client, `echo "${SSH_AUTH_SOCK-unset}"`, "")
	if r.stdout != "unset\n" {
		t.Errorf("SSH_AUTH_SOCK without forwarding: %q", r.stdout)
	}
}

func TestSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []ssh.Signal{ssh.SIGTERM, ssh.SIGKILL, ssh.SIGINT, ssh.SIGHUP} {
		t.Run(string(sig), func(t *testing.T) {
			t.Parallel()
			srv := start(t, nil)
			client := dial(t, srv, "u")
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if err := sess.Start(pidCommand("pid")); err != nil {
				t.Fatal(err)
			}
			pid := readPID(t, filepath.Join(srv.Dir, "pid"))
			if err := sess.Signal(sig); err != nil {
				t.Fatal(err)
			}
			// The command would sleep for 300s: one that ends within
			// patience was ended by the signal.
			done := make(chan error, 1)
			go func() { done <- sess.Wait() }()
			select {
			case err = <-done:
			case <-time.After(patience):
				t.Fatalf("the command did not end within %s of the signal", patience)
			}
			var ee *ssh.ExitError
			if !errors.As(err, &ee) || ee.Signal() != string(sig) {
				t.Errorf("Wait: %v; want exit signal %s", err, sig)
			}
			if alive(pid) {
				t.Errorf("process %d still alive", pid)
			}
			if st := srv.Stats(); st.Signals != 1 {
				t.Errorf("Stats().Signals = %d", st.Signals)
			}
		})
	}
}

func TestSignalReachesProcessGroup(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// The shell does not exec, so sleep is a child in the shell's group.
	if err := sess.Start(`sleep 300 & echo $! > child.tmp && mv child.tmp child; wait`); err != nil {
		t.Fatal(err)
	}
	child := readPID(t, filepath.Join(srv.Dir, "child"))
	if err := sess.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("session did not end after SIGTERM")
	}
	waitFor(t, patience, "child exit", func() bool { return !alive(child) })
}

func TestSignalBeforeStart(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Start("sleep 300"); err != nil {
		t.Fatal(err)
	}
	// Sent right after the exec request, possibly before the process has
	// started.
	if err := sess.Signal(ssh.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.Signal() != "KILL" {
			t.Errorf("Wait: %v; want exit signal KILL", err)
		}
	case <-time.After(patience):
		t.Fatal("command not killed")
	}
}

func TestCloseSessionKillsCommand(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(pidCommand("pid")); err != nil {
		t.Fatal(err)
	}
	pid := readPID(t, filepath.Join(srv.Dir, "pid"))
	if !alive(pid) {
		t.Fatalf("process %d not running", pid)
	}
	sess.Close()
	waitFor(t, patience, "process exit after session close", func() bool { return !alive(pid) })

	// The connection is still usable.
	if r := run(t, client, "echo ok", ""); r.stdout != "ok\n" {
		t.Errorf("after close: %q, %v", r.stdout, r.err)
	}
}

func TestClientDisconnectKillsCommand(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(pidCommand("pid")); err != nil {
		t.Fatal(err)
	}
	pid := readPID(t, filepath.Join(srv.Dir, "pid"))
	client.Close()
	waitFor(t, patience, "process exit after disconnect", func() bool { return !alive(pid) })
	waitFor(t, patience, "connection cleanup", func() bool { return srv.Stats().ActiveConnections == 0 })
}

func TestCloseWithRunningCommands(t *testing.T) {
	t.Parallel()
	srv := sshtest.NewServer()
	defer srv.Close()
	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	var pids []int
	var wg sync.WaitGroup
	for i := range 3 {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("pid%d", i)
		if err := sess.Start(pidCommand(name)); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, readPID(t, filepath.Join(srv.Dir, name)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess.Wait()
		}()
	}
	// One more that never reads its output.
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("yes"); err != nil {
		t.Fatal(err)
	}

	// The commands would run for 300s, or forever: a Close that returns
	// within patience killed them rather than waiting for them.
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(patience):
		t.Fatalf("Close did not return within %s", patience)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d alive after Close", pid)
		}
	}
	wg.Wait()
	if _, err := client.NewSession(); err == nil {
		t.Error("NewSession succeeded after Close")
	}
}

func TestKeepaliveAndGlobalRequests(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	ok, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || ok {
		t.Errorf("keepalive: ok=%v err=%v; want false, nil", ok, err)
	}
	if _, _, err := client.SendRequest("keepalive@openssh.com", false, nil); err != nil {
		t.Errorf("keepalive without reply: %v", err)
	}
	ok, _, err = client.SendRequest("no-more-sessions@openssh.com", true, nil)
	if err != nil || !ok {
		t.Errorf("no-more-sessions: ok=%v err=%v", ok, err)
	}
	if _, err := client.NewSession(); err == nil {
		t.Error("session opened after no-more-sessions")
	}
	if _, err := client.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Error("direct-tcpip channel accepted")
	}
}

func TestRefusedRequests(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Error("pty-req accepted")
	}
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("subsystem accepted")
	}
	if err := sess.Shell(); err == nil {
		t.Error("shell accepted")
	}
	// The session still runs a command afterwards.
	out, err := sess.Output("echo still")
	if err != nil || string(out) != "still\n" {
		t.Errorf("exec after refused requests: %q, %v", out, err)
	}
}

func TestAuthorizedKeys(t *testing.T) {
	t.Parallel()
	_, extraPriv, _ := ed25519.GenerateKey(rand.Reader)
	extra, _ := ssh.NewSignerFromKey(extraPriv)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	srv := start(t, func(s *sshtest.Server) {
		s.AuthorizedKeys = []ssh.PublicKey{extra.PublicKey()}
	})

	cfg := srv.ClientConfig("extra")
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(extra)}
	c, err := ssh.Dial("tcp", srv.Addr, cfg)
	if err != nil {
		t.Fatalf("extra key rejected: %v", err)
	}
	c.Close()

	cfg = srv.ClientConfig("other")
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(other)}
	if c, err := ssh.Dial("tcp", srv.Addr, cfg); err == nil {
		c.Close()
		t.Fatal("unauthorized key accepted")
	}

	cfg = srv.ClientConfig("pw")
	cfg.Auth = []ssh.AuthMethod{ssh.Password("secret")}
	if c, err := ssh.Dial("tcp", srv.Addr, cfg); err == nil {
		c.Close()
		t.Fatal("password accepted")
	}
	waitFor(t, patience, "failed handshakes to be counted", func() bool { return srv.Stats().FailedHandshakes == 2 })
	st := srv.Stats()
	if st.Connections != 1 || st.AuthRejections != 1 || st.FailedHandshakes != 2 {
		t.Errorf("Stats() = %+v", st)
	}
	if got := srv.Users(); !slices.Equal(got, []string{"extra"}) {
		t.Errorf("Users() = %q", got)
	}
}

func TestFaultHangHandshake(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	srv.SetFault(sshtest.FaultHangHandshake)
	if srv.Fault() != sshtest.FaultHangHandshake {
		t.Fatalf("Fault() = %v", srv.Fault())
	}

	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := conn.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, err %v; want a timeout", n, err)
	}

	// An SSH client hangs in the handshake.
	hung := make(chan error, 1)
	go func() {
		c, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u"))
		if err == nil {
			c.Close()
		}
		hung <- err
	}()
	select {
	case err := <-hung:
		t.Fatalf("handshake finished during FaultHangHandshake: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	waitFor(t, patience, "two held connections", func() bool { return srv.Stats().ActiveConnections == 2 })

	// Clearing the fault closes the held connections.
	srv.SetFault(sshtest.FaultNone)
	conn.SetReadDeadline(time.Now().Add(patience))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("held connection not closed: %v", err)
	}
	select {
	case err := <-hung:
		if err == nil {
			t.Error("held handshake succeeded")
		}
	case <-time.After(patience):
		t.Fatal("held handshake not released")
	}
	if r := run(t, dial(t, srv, "u"), "echo ok", ""); r.stdout != "ok\n" {
		t.Errorf("after clearing the fault: %q, %v", r.stdout, r.err)
	}
}

func TestFaultHangHandshakeClose(t *testing.T) {
	t.Parallel()
	srv := sshtest.NewServer()
	srv.SetFault(sshtest.FaultHangHandshake)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, patience, "held connection", func() bool { return srv.Stats().ActiveConnections == 1 })
	srv.Close()
	conn.SetReadDeadline(time.Now().Add(patience))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("held connection not closed by Close: %v", err)
	}
}

func TestFaultHangCommands(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	srv.SetFault(sshtest.FaultHangCommands)

	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	sess.Stdout = &stdout
	if err := sess.Start("echo never > ran"); err != nil {
		t.Fatalf("exec not accepted: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("hung command completed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if got := srv.Commands(); !slices.Equal(got, []string{"echo never > ran"}) {
		t.Errorf("Commands() = %q", got)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, "ran")); err == nil {
		t.Error("hung command ran")
	}

	// Clearing the fault affects new commands only.
	srv.SetFault(sshtest.FaultNone)
	if r := run(t, client, "echo ok", ""); r.stdout != "ok\n" {
		t.Errorf("after clearing the fault: %q, %v", r.stdout, r.err)
	}
	select {
	case err := <-done:
		t.Fatalf("hung command completed after clearing the fault: %v", err)
	default:
	}

	// Closing the session releases it.
	sess.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("hung command reported success")
		}
	case <-time.After(patience):
		t.Fatal("session close did not release the command")
	}
	if stdout.Len() != 0 {
		t.Errorf("hung command wrote %q", stdout.String())
	}

	// Close returns while commands hang.
	srv.SetFault(sshtest.FaultHangCommands)
	sess2, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess2.Start("true"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(patience):
		t.Fatal("Close blocked on a hung command")
	}
}

func TestFaultDropConnections(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	client := dial(t, srv, "u")
	if r := run(t, client, "true", ""); r.err != nil {
		t.Fatal(r.err)
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(pidCommand("pid")); err != nil {
		t.Fatal(err)
	}
	pid := readPID(t, filepath.Join(srv.Dir, "pid"))

	srv.SetFault(sshtest.FaultDropConnections)
	waitDone := make(chan error, 1)
	go func() { waitDone <- client.Wait() }()
	select {
	case <-waitDone:
	case <-time.After(patience):
		t.Fatal("existing connection not dropped")
	}
	waitFor(t, patience, "command killed", func() bool { return !alive(pid) })

	if c, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u")); err == nil {
		c.Close()
		t.Fatal("new connection not dropped")
	}
	waitFor(t, patience, "no active connections", func() bool { return srv.Stats().ActiveConnections == 0 })

	srv.SetFault(sshtest.FaultNone)
	if r := run(t, dial(t, srv, "u"), "echo ok", ""); r.stdout != "ok\n" {
		t.Errorf("after clearing the fault: %q, %v", r.stdout, r.err)
	}
	if st := srv.Stats(); st.Accepted != 3 || st.Connections != 2 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestFaultFreezeConnections(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	frozen := dial(t, srv, "u")
	if r := run(t, frozen, "true", ""); r.err != nil {
		t.Fatal(r.err)
	}
	srv.SetFault(sshtest.FaultFreezeConnections)
	answered := make(chan error, 1)
	go func() {
		_, _, err := frozen.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a frozen connection answered a keepalive (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	// New connections are served while the old one stays frozen.
	if r := run(t, dial(t, srv, "u"), "echo ok", ""); r.stdout != "ok\n" {
		t.Errorf("new connection during the freeze: %q, %v", r.stdout, r.err)
	}
	if got := srv.Fault().String(); got != "FaultFreezeConnections" {
		t.Errorf("Fault().String() = %q", got)
	}
	srv.SetFault(sshtest.FaultNone)
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("keepalive after the thaw: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("the thawed connection did not answer")
	}
	if r := run(t, frozen, "echo thawed", ""); r.stdout != "thawed\n" {
		t.Errorf("after the thaw: %q, %v", r.stdout, r.err)
	}
}

func TestFaultDeafConnections(t *testing.T) {
	t.Parallel()
	send := make(chan struct{})
	srv := start(t, func(s *sshtest.Server) {
		s.Handler = func(e *sshtest.Exec) {
			if e.Command != "talk" {
				sshtest.ShellHandler(e)
				return
			}
			<-send
			fmt.Fprintln(e.Stdout, "sent while deaf")
			<-e.Context().Done()
		}
	})
	deaf := dial(t, srv, "u")
	sess, err := deaf.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := sess.StdoutPipe()
	if err := sess.Start("talk"); err != nil {
		t.Fatal(err)
	}
	srv.SetFault(sshtest.FaultDeafConnections)
	answered := make(chan error, 1)
	go func() {
		_, _, err := deaf.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a deaf connection answered a keepalive (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	// The server still sends.
	close(send)
	line := make(chan string, 1)
	go func() {
		b, _ := bufio.NewReader(out).ReadString('\n')
		line <- b
	}()
	select {
	case got := <-line:
		if got != "sent while deaf\n" {
			t.Errorf("output = %q", got)
		}
	case <-time.After(patience):
		t.Fatal("a deaf connection sent nothing")
	}
	// Closing the session is not seen: the command goes on.
	sess.Close()
	exited := make(chan error, 1)
	go func() { exited <- sess.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("the session ended while the server was deaf (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	// New connections are served.
	if r := run(t, dial(t, srv, "u"), "echo ok", ""); r.err != nil {
		t.Errorf("new connection while deaf: %v", r.err)
	}
	if got := srv.Fault().String(); got != "FaultDeafConnections" {
		t.Errorf("Fault().String() = %q", got)
	}
	srv.SetFault(sshtest.FaultNone)
	for _, c := range []chan error{answered, exited} {
		select {
		case <-c:
		case <-time.After(patience):
			t.Fatal("the connection did not catch up after the fault was cleared")
		}
	}
}

func TestFaultFreezeConnectionsClose(t *testing.T) {
	t.Parallel()
	srv := sshtest.NewServer()
	client, err := srv.Dial("u")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, _ := client.NewSession()
	sess.Start("sleep 300")
	srv.SetFault(sshtest.FaultFreezeConnections)
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(patience):
		t.Fatal("Close blocked on a frozen connection")
	}
}

func TestFaultRejectAuth(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	existing := dial(t, srv, "u")
	srv.SetFault(sshtest.FaultRejectAuth)
	if c, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u")); err == nil {
		c.Close()
		t.Fatal("authentication succeeded during FaultRejectAuth")
	} else if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("unexpected error: %v", err)
	}
	if r := run(t, existing, "echo ok", ""); r.stdout != "ok\n" {
		t.Errorf("existing connection: %q, %v", r.stdout, r.err)
	}
	srv.SetFault(sshtest.FaultNone)
	dial(t, srv, "u")
	waitFor(t, patience, "handshakes to be counted", func() bool {
		st := srv.Stats()
		return st.FailedHandshakes == 1 && st.Connections == 2
	})
	if st := srv.Stats(); st.AuthRejections == 0 || st.Connections != 2 || st.FailedHandshakes != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestKnownHostsLine(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	line := srv.KnownHostsLine()
	_, port, _ := net.SplitHostPort(srv.Addr)
	if !strings.HasPrefix(line, "[127.0.0.1]:"+port+" ssh-ed25519 AAAA") {
		t.Errorf("KnownHostsLine() = %q", line)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(path, []byte(line+"\n"), 0o600)
	cb, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := srv.ClientConfig("u")
	cfg.HostKeyCallback = cb
	c, err := ssh.Dial("tcp", srv.Addr, cfg)
	if err != nil {
		t.Fatalf("dial with known_hosts: %v", err)
	}
	c.Close()
}

func TestWriteClientFiles(t *testing.T) {
	t.Parallel()
	srv := start(t, func(s *sshtest.Server) { s.Env = []string{"SSHTEST_VIA=openssh"} })
	dir := filepath.Join(t.TempDir(), "dir with space")
	files, err := srv.WriteClientFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files.Alias != sshtest.DefaultAlias {
		t.Errorf("Alias = %q", files.Alias)
	}
	fi, err := os.Stat(files.IdentityFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, %v", fi, err)
	}
	pem, _ := os.ReadFile(files.IdentityFile)
	key, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatalf("parsing identity file: %v", err)
	}
	if !bytes.Equal(key.PublicKey().Marshal(), srv.ClientKey.PublicKey().Marshal()) {
		t.Error("identity file holds another key")
	}
	kh, _ := os.ReadFile(files.KnownHostsFile)
	if string(kh) != srv.KnownHostsLine()+"\n" {
		t.Errorf("known_hosts = %q", kh)
	}
	cfg, _ := os.ReadFile(files.ConfigFile)
	_, port, _ := net.SplitHostPort(srv.Addr)
	for _, want := range []string{"Host sshtest\n", "HostName 127.0.0.1\n", "Port " + port + "\n",
		`IdentityFile "` + files.IdentityFile + `"`, `UserKnownHostsFile "` + files.KnownHostsFile + `"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("ssh_config lacks %q:\n%s", want, cfg)
		}
	}

	sshPath := fleettest.RequireTool(t, "ssh", "openssh-client")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{{"true"}, {"echo", "$SSHTEST_VIA"}} {
		cmd := exec.CommandContext(ctx, sshPath, append([]string{"-F", files.ConfigFile, files.Alias}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ssh %q: %v\nstderr: %s", args, err, stderr.String())
		}
		if args[0] == "echo" && stdout.String() != "openssh\n" {
			t.Errorf("ssh echo: %q", stdout.String())
		}
	}
	if got := srv.Commands(); !slices.Equal(got, []string{"true", "echo $SSHTEST_VIA"}) {
		t.Errorf("Commands() = %q", got)
	}
}

func TestWriteClientFilesWithoutPrivateKey(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	srv := start(t, func(s *sshtest.Server) { s.ClientKey = signer })
	if _, err := srv.WriteClientFiles(t.TempDir()); err == nil {
		t.Error("WriteClientFiles succeeded without ClientPrivateKey")
	}
	srv2 := start(t, func(s *sshtest.Server) {
		s.ClientKey = signer
		s.ClientPrivateKey = priv
		s.Alias = "custom"
	})
	files, err := srv2.WriteClientFiles(t.TempDir())
	if err != nil || files.Alias != "custom" {
		t.Errorf("WriteClientFiles: %+v, %v", files, err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	srv := sshtest.NewServer()
	defer srv.Close()
	if err := srv.Listen(); err == nil {
		t.Error("second Listen succeeded")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second Start did not panic")
			}
		}()
		srv.Start()
	}()
	srv.Close()
	srv.Close()
	sshtest.NewUnstartedServer().Close()
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			srv.Stats()
			srv.Commands()
			srv.Users()
			srv.SetFault(sshtest.FaultNone)
			time.Sleep(time.Millisecond)
		}
	}()
	var clients sync.WaitGroup
	for i := range 8 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			c, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u"+strconv.Itoa(i)))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range 3 {
				s, err := c.NewSession()
				if err != nil {
					t.Error(err)
					return
				}
				out, err := s.Output("echo " + strconv.Itoa(i*10+j))
				s.Close()
				if err != nil || string(out) != strconv.Itoa(i*10+j)+"\n" {
					t.Errorf("got %q, %v", out, err)
				}
			}
		}()
	}
	clients.Wait()
	close(stop)
	wg.Wait()
	if st := srv.Stats(); st.Execs != 24 || st.Connections != 8 {
		t.Errorf("Stats() = %+v", st)
	}
}

// TestNoGoroutinesAfterClose is not parallel: it runs before the parallel
// tests, when no other server exists.
func TestNoGoroutinesAfterClose(t *testing.T) {
	srv := sshtest.NewServer()
	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("u"))
	if err != nil {
		t.Fatal(err)
	}
	agent.ForwardToAgent(client, agent.NewKeyring())
	run(t, client, "echo hi", "in")
	sess, _ := client.NewSession()
	agent.RequestAgentForwarding(sess)
	sess.Start(`sleep 30 & sleep 30`)
	srv.SetFault(sshtest.FaultHangCommands)
	sess2, _ := client.NewSession()
	sess2.Start("true")
	srv.SetFault(sshtest.FaultHangHandshake)
	held, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	waitFor(t, patience, "held connection", func() bool { return srv.Stats().ActiveConnections == 2 })

	srv.Close()
	client.Close()

	// Close waits for the goroutines; allow a moment for them to unwind.
	deadline := time.Now().Add(patience)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "sshx/sshtest.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Close:\n%s", stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With TCPForwarding the server is a jump host: a direct-tcpip channel
// reaches another server; an address nobody listens on is refused with
// "connect failed". Without it, every channel is "administratively
// prohibited".
func TestForwarding(t *testing.T) {
	t.Parallel()
	target := start(t, nil)
	jump := start(t, func(s *sshtest.Server) { s.TCPForwarding = true })
	client := dial(t, jump, "u")
	conn, err := client.Dial("tcp", target.Addr)
	if err != nil {
		t.Fatalf("dial %s through the jump host: %v", target.Addr, err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, target.Addr, target.ClientConfig("v"))
	if err != nil {
		t.Fatalf("handshake through the jump host: %v", err)
	}
	behind := ssh.NewClient(sc, chans, reqs)
	if out, err := mustSession(t, behind).Output("echo behind"); err != nil || string(out) != "behind\n" {
		t.Errorf("command through the jump host: %q, %v", out, err)
	}
	behind.Close()

	addr := testenv.RefusingAddr(t)
	var oc *ssh.OpenChannelError
	if _, err := client.Dial("tcp", addr); !errors.As(err, &oc) || oc.Reason != ssh.ConnectionFailed {
		t.Errorf("dial to a closed port: %v, want connect failed", err)
	}
	if _, err := dial(t, start(t, nil), "u").Dial("tcp", target.Addr); !errors.As(err, &oc) || oc.Reason != ssh.Prohibited {
		t.Errorf("dial without TCPForwarding: %v, want administratively prohibited", err)
	}
	waitFor(t, patience, "forward counts", func() bool {
		st := jump.Stats()
		return st.Forwards == 1 && st.ForwardsRefused == 1
	})
}

func mustSession(t *testing.T, c *ssh.Client) *ssh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
