package sshx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/magefab/magefab/sshx"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEachBoundsParallelismAndNamesEveryFailure(t *testing.T) {
	t.Parallel()
	var hosts []sshx.Host
	for i := range 10 {
		hosts = append(hosts, sshx.NewLocal(fmt.Sprintf("h%d", i)))
	}
	var running, peak atomic.Int32
	sentinel := errors.New("boom")
	res, err := sshx.Each(context.Background(), hosts, 3, func(ctx context.Context, h sshx.Host) (string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if err := h.Script(ctx, "sleep 0.05").Run(); err != nil {
			return "", err
		}
		if h.Name() == "h2" || h.Name() == "h7" {
			return "", fmt.Errorf("wrapped: %w", sentinel)
		}
		return "ok " + h.Name(), nil
	})
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak parallelism = %d, want 3 (at most)", p)
	}
	if len(res) != 10 || res[0].Value != "ok h0" || res[9].Value != "ok h9" {
		t.Errorf("results out of order or missing: %+v", res)
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"2 hosts failed", "h2: wrapped: boom", "h7: wrapped: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var he *sshx.HostError
	if !errors.As(err, &he) || he.Host != "h2" {
		t.Errorf("errors.As(*sshx.HostError) = %v, want host h2", he)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(err, sentinel) = false")
	}
}

func TestEachCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hosts := []sshx.Host{sshx.NewLocal("a"), sshx.NewLocal("b")}
	_, err := sshx.Each(ctx, hosts, 1, func(ctx context.Context, h sshx.Host) (int, error) { return 1, ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestConsolePrefixesWholeLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := sshx.NewConsole(&buf)
	c.Align("web1", "web10")
	var wg sync.WaitGroup
	for _, h := range []string{"web1", "web10"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := c.Writer(h)
			for i := range 100 {
				fmt.Fprintf(w, "line %d of ", i)
				fmt.Fprintf(w, "%s\n", h)
			}
			fmt.Fprint(w, "tail")
			w.Close()
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 202 {
		t.Fatalf("%d lines, want 202", len(lines))
	}
	for _, l := range lines {
		ok := strings.HasPrefix(l, "web1  | line ") && strings.HasSuffix(l, "of web1") ||
			strings.HasPrefix(l, "web10 | line ") && strings.HasSuffix(l, "of web10") ||
			l == "web1  | tail" || l == "web10 | tail"
		if !ok {
			t.Errorf("mixed or unprefixed line %q", l)
		}
	}
}
