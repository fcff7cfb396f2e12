package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sample is one timed command: a deploy, a rollback or the floor.
type sample struct {
	Hosts    int
	Run      int
	Tool     string
	Op       string  // cold1, cold2, warm, redeploy, rollback, floor
	Wall     float64 // seconds
	CPU      float64 // user+system seconds of the process and the children it waited for
	MaxRSSMB float64 // peak resident set of the process or of any child it waited for
	Conns    []int   // per host: SSH connections ("Accepted publickey")
	Sessions []int   // per host: SSH sessions ("Starting session")
	// HostCPU is, per host, the CPU seconds the host spent on the command:
	// sshd and every process a session ran (not the app's own process).
	HostCPU []float64
	// Handshakes are the times, in seconds since start, at which the
	// hosts' sshd accepted the command's SSH connections.
	Handshakes []float64 `json:",omitempty"`
	OK         bool      // exited 0 and every host serves the expected commit
	Err        string    `json:",omitempty"`
	Log        string    // the command's output, each line with its time since start
	// Markers holds, for each pattern the tool's output was searched for,
	// the seconds since start of its first and last line.
	Markers map[string][2]float64 `json:",omitempty"`
	// Load is what the requests sent to the tool's app during the command
	// saw (-load); nil without load.
	Load *loadStats `json:",omitempty"`
	// LoadBefore is the part of Load finished before the tool's switch
	// began (tool.switchLine; the rolling switch), every host in service;
	// nil otherwise.
	LoadBefore *loadStats `json:",omitempty"`
	// Out is what the load balancer said of the hosts out of service
	// during the command (the rolling switch); nil otherwise.
	Out *outStats `json:",omitempty"`
}

func (s *sample) perHost(v []int) (mean float64, most int) {
	if len(v) == 0 {
		return 0, 0
	}
	sum := 0
	for _, x := range v {
		sum += x
		most = max(most, x)
	}
	return float64(sum) / float64(len(v)), most
}

// stampWriter writes each line it gets to w with its time since start,
// finds the marker patterns, and keeps the last lines for error messages.
type stampWriter struct {
	mu       sync.Mutex
	start    time.Time
	w        io.Writer
	echo     io.Writer // also show the lines live (-v); nil for quiet
	prefix   string
	partial  []byte
	tail     []string
	patterns []string
	markers  map[string][2]float64
	onLine   func(line string) // called with each line, if set
}

func (s *stampWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := strings.IndexByte(string(s.partial), '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

func (s *stampWriter) line(l string) {
	t := time.Since(s.start).Seconds()
	fmt.Fprintf(s.w, "%+8.3f %s\n", t, l)
	if s.echo != nil {
		fmt.Fprintf(s.echo, "%s %+8.3f %s\n", s.prefix, t, l)
	}
	if s.onLine != nil {
		s.onLine(l)
	}
	s.tail = append(s.tail, l)
	if len(s.tail) > 15 {
		s.tail = s.tail[1:]
	}
	for _, p := range s.patterns {
		if strings.Contains(l, p) {
			m, seen := s.markers[p]
			if !seen {
				m[0] = t
			}
			m[1] = t
			s.markers[p] = m
		}
	}
}

func (s *stampWriter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

// measure runs cmd with its output, time-stamped, in logPath, and fills in
// the wall time, CPU time and peak RSS of the process (from its rusage,
// which on Linux includes the children it waited for). onLine, if not nil,
// is called with each line of the output as it comes.
func measure(cmd *exec.Cmd, logPath string, echo io.Writer, prefix string, patterns []string, onLine func(string), s *sample) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s (in %s)\n", strings.Join(cmd.Args, " "), cmd.Dir)
	sw := &stampWriter{w: f, echo: echo, prefix: prefix, patterns: patterns, markers: map[string][2]float64{}, onLine: onLine}
	cmd.Stdout, cmd.Stderr = sw, sw
	cmd.WaitDelay = 10 * time.Second
	s.Log = logPath
	sw.start = time.Now()
	err = cmd.Run()
	s.Wall = time.Since(sw.start).Seconds()
	sw.flush()
	s.Markers = sw.markers
	if ps := cmd.ProcessState; ps != nil {
		s.CPU = (ps.UserTime() + ps.SystemTime()).Seconds()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			s.MaxRSSMB = float64(ru.Maxrss) / 1024 // kilobytes on Linux
		}
	}
	fmt.Fprintf(f, "# exit: %v; wall %.3fs, cpu %.3fs, max rss %.1f MB\n", err, s.Wall, s.CPU, s.MaxRSSMB)
	if err != nil {
		return fmt.Errorf("%s: %v; last lines:\n    %s", strings.Join(cmd.Args, " "), err, strings.Join(sw.tail, "\n    "))
	}
	return nil
}

// verify asks every host's app for the commit it serves.
func verify(ctx context.Context, n, port int, want string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i, h := range hosts(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := version(ctx, client, fmt.Sprintf("http://%s:%d/version", addr(i), port))
			for try := 0; try < 3 && (err != nil || got != want); try++ {
				time.Sleep(300 * time.Millisecond)
				got, err = version(ctx, client, fmt.Sprintf("http://%s:%d/version", addr(i), port))
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %v", h, err))
			case got != want:
				errs = append(errs, fmt.Errorf("%s serves %.12s, want %.12s", h, got, want))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func version(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}
