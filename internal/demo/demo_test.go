package demo

import (
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
	"golang.org/x/sys/unix"
)

// TestDemo runs the whole demo, as `go tool mage demo` does, and checks
// what a newcomer sees.
func TestDemo(t *testing.T) {
	fleettest.RequireTool(t, "git", "git")
	fleettest.RequireTool(t, "python3", "python3")
	if err := Check(); err != nil {
		fleettest.Unavailable(t, err.Error())
	}
	// The targets print to standard output, as under mage: capture fd 1.
	out, err := captureStdout(t, func() error { return Run(context.Background(), os.Stdout) })
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := out
	for _, want := range []string{
		"v0.1.0 is now deployed to PRODUCTION",
		"Tagged", "v0.1.1 is now deployed to PRODUCTION",
		"current -> b",
		"v0.1.0 is now deployed to PRODUCTION again",
		"examples/tornado", "tornado-",
		"hello is down for maintenance",
		"1 SSH connection(s)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// The deploy, the rollback and maint:enable run under load, through
	// slots: not one request fails.
	loads := regexp.MustCompile(`meanwhile, 200 requests/s to the app: (\d+) sent, (\d+) failed`).FindAllStringSubmatch(s, -1)
	if len(loads) != 3 {
		t.Errorf("the demo shows %d runs under load, want 3:\n%s", len(loads), s)
	}
	for _, m := range loads {
		if sent, _ := strconv.Atoi(m[1]); sent < 50 || m[2] != "0" {
			t.Errorf("under load: %s sent, %s failed; want at least 50 sent and 0 failed:\n%s", m[1], m[2], s)
		}
	}
	if strings.Contains(s, "\x1b[") {
		t.Errorf("demo output to a pipe holds terminal escape codes:\n%q", s)
	}
	if n := strings.Count(s, "hello from Tornado ("); n < 3 {
		t.Errorf("the app answered %d times, want at least 3:\n%s", n, s)
	}
	if entries, _ := os.ReadDir(os.TempDir()); len(entries) > 0 {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "magefab-demo") {
				t.Errorf("demo left %s behind", e.Name())
			}
		}
	}
}

// captureStdout runs fn with file descriptor 1 redirected to a pipe and
// returns what was written to it.
func captureStdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	saved, err := unix.Dup(1)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	unix.Dup2(int(w.Fd()), 1)
	ferr := fn()
	unix.Dup2(saved, 1)
	unix.Close(saved)
	w.Close()
	return <-done, ferr
}
