package haproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A check running while "show stat" is read puts "* " before the last
// check's result; the result read is the last one's, without it, so an
// error naming a server reads the same whichever moment it was taken.
func TestParseStatCheckInProgress(t *testing.T) {
	out := "# pxname,svname,qcur,scur,status,check_status,\n" +
		"front,FRONTEND,,3,OPEN,,\n" +
		"app,web1,0,0,UP,L7OK,\n" +
		"app,web2,0,1,DRAIN,* L7OK,\n" +
		"app,web3,0,0,DOWN,* L4CON,\n" +
		"app,web4,0,0,no check,,\n" +
		"app,BACKEND,0,1,UP,,\n" +
		"other,web1,0,9,DOWN,L4TOUT,\n"
	m, err := parseStat("app", out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]serverStat{
		"web1": {status: "UP", check: "L7OK", checked: true},
		"web2": {status: "DRAIN", check: "L7OK", scur: 1, checked: true},
		"web3": {status: "DOWN", check: "L4CON", checked: true},
		"web4": {status: "no check"},
	}
	if len(m) != len(want) {
		t.Errorf("servers = %v, want %v", m, want)
	}
	for sv, w := range want {
		if m[sv] != w {
			t.Errorf("%s = %+v, want %+v", sv, m[sv], w)
		}
	}
	if got := m["web2"].String(); got != "DRAIN, check L7OK, 1 sessions" {
		t.Errorf("web2 reads %q", got)
	}
	if _, err := parseStat("nope", out); err == nil {
		t.Error("a backend the answer lacks: no error")
	}
}

// deadlineOnly is a context with a deadline that does not say it is done
// when the deadline passes: the moment between a socket's deadline
// cutting a dial or a read and ctx.Err() saying so, held open.
type deadlineOnly struct {
	context.Context
	at time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.at, true }

// A dial or a read of the stats socket cut by the context's deadline,
// before the context says it is done, ends a wait as "not yet ...",
// naming the servers still waited for, not as a failure of the socket.
func TestWaitCutByItsDeadline(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "stats")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 8)
	go func() { // accepts, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	defer func() {
		close(held)
		for c := range held {
			c.Close()
		}
	}()
	b := &Balancer{Socket: sock, Backend: "app"}
	done := func(serverStat) bool { return true }
	for _, c := range []struct {
		name string
		at   time.Time
	}{
		{"dial", time.Now().Add(-time.Second)},
		{"read", time.Now().Add(100 * time.Millisecond)},
	} {
		ctx := deadlineOnly{context.Background(), c.at}
		err := b.wait(ctx, []string{"web1"}, "drained", done)
		if err == nil || !strings.Contains(err.Error(), `haproxy: backend "app": not yet drained: web1: `) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s cut by the deadline: error = %v", c.name, err)
		}
	}
	// Without a deadline, a socket that fails is a failure.
	ln.Close()
	os.Remove(sock)
	err = b.wait(context.Background(), []string{"web1"}, "drained", done)
	if err == nil || strings.Contains(err.Error(), "not yet") || !strings.Contains(err.Error(), "the stats socket") {
		t.Errorf("no socket: error = %v", err)
	}
}
