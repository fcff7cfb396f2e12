package sshx_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh/agent"
)

// brokenReader gives the first n bytes of data and then fails, as a
// network source or a failing disk does.
type brokenReader struct {
	data []byte
	n    int
	err  error
}

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, b.err
	}
	k := copy(p, b.data[:min(b.n, len(b.data))])
	b.data, b.n = b.data[k:], b.n-k
	return k, nil
}

// sizedBrokenReader claims its full size in advance (as bytes.Reader
// does) and still fails midway.
type sizedBrokenReader struct {
	brokenReader
	size int
}

func (s *sizedBrokenReader) Len() int { return s.size }

// stallingReader gives a few bytes and then blocks until ctx is done.
type stallingReader struct {
	ctx  context.Context
	sent bool
	got  chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		close(s.got)
		return copy(p, "partial"), nil
	}
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

// uploadHosts returns a local host and a remote one on an sshtest server;
// both write to this machine's file system.
func uploadHosts(t *testing.T) map[string]sshx.Host {
	_, _, r, _ := newHost(t, nil)
	return map[string]sshx.Host{"local": sshx.NewLocal(""), "remote": r}
}

// onlyFile fails unless dir holds exactly the file name: no temporaries.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("%s holds %q, want only %q", dir, names, name)
	}
}

func TestUploadFailedReaderKeepsOldFile(t *testing.T) {
	t.Parallel()
	old := []byte("old content\n")
	data := bytes.Repeat([]byte("new content\n"), 10000)
	boom := errors.New("disk on fire")
	for name, h := range uploadHosts(t) {
		for _, c := range []struct {
			what string
			r    io.Reader
		}{
			{"unknown size", &brokenReader{data: data, n: 5000, err: boom}},
			{"known size", &sizedBrokenReader{brokenReader{data: data, n: 5000, err: boom}, len(data)}},
			{"nothing sent", &brokenReader{data: data, n: 0, err: boom}},
		} {
			t.Run(name+"/"+c.what, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				dst := filepath.Join(dir, "app.conf")
				os.WriteFile(dst, old, 0o644)
				err := h.Upload(context.Background(), sshx.File{Path: dst, Mode: 0o600}, c.r)
				if !errors.Is(err, boom) || !strings.Contains(err.Error(), "old file is kept") {
					t.Errorf("Upload = %v, want the reader's error", err)
				}
				if got, _ := os.ReadFile(dst); !bytes.Equal(got, old) {
					t.Errorf("after a failed upload the file holds %d bytes, want the old %q", len(got), old)
				}
				if st, _ := os.Stat(dst); st.Mode().Perm() != 0o644 {
					t.Errorf("mode changed to %o", st.Mode().Perm())
				}
				onlyFile(t, dir, "app.conf")
			})
		}
	}
}

func TestUploadShortKnownSizeRefused(t *testing.T) {
	t.Parallel()
	// A reader whose Len promises more than it gives: EOF comes early.
	for name, h := range uploadHosts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dst := filepath.Join(dir, "f")
			os.WriteFile(dst, []byte("old"), 0o644)
			r := &sizedBrokenReader{brokenReader{data: []byte("new data"), n: 3, err: io.EOF}, 8}
			err := h.Upload(context.Background(), sshx.File{Path: dst}, r)
			if err == nil || !strings.Contains(err.Error(), "received 3 bytes of 8") {
				t.Errorf("Upload = %v, want the size mismatch reported", err)
			}
			if got, _ := os.ReadFile(dst); string(got) != "old" {
				t.Errorf("file = %q, want the old content", got)
			}
			onlyFile(t, dir, "f")
		})
	}
}

func TestUploadCancelLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	for name, h := range uploadHosts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dst := filepath.Join(dir, "f")
			os.WriteFile(dst, []byte("old"), 0o644)
			ctx, cancel := context.WithCancel(context.Background())
			r := &stallingReader{ctx: ctx, got: make(chan struct{})}
			errc := make(chan error, 1)
			go func() { errc <- h.Upload(ctx, sshx.File{Path: dst}, r) }()
			<-r.got
			// Let the partial data reach the temporary file.
			deadline := time.Now().Add(5 * time.Second)
			for {
				entries, _ := os.ReadDir(dir)
				if len(entries) == 2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Upload = %v, want context.Canceled", err)
			}
			if got, _ := os.ReadFile(dst); string(got) != "old" {
				t.Errorf("file = %q, want the old content", got)
			}
			// The script removes its temporary file on TERM; give it the
			// moment the host needs.
			deadline = time.Now().Add(5 * time.Second)
			for {
				entries, _ := os.ReadDir(dir)
				if len(entries) == 1 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			onlyFile(t, dir, "f")
		})
	}
}

// The second command of a two-step upload is cut off by a lost connection:
// the temporary file the first one filled is removed all the same.
func TestUploadLostConnectionInSecondStepLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	var dropped atomic.Bool
	srv := sshtest.NewUnstartedServer()
	srv.Handler = func(e *sshtest.Exec) {
		// The second step checks the size and renames; the first makes
		// the temporary file.
		second := strings.Contains(e.Command, "wc -c") && !strings.Contains(e.Command, "mktemp")
		if second && dropped.CompareAndSwap(false, true) {
			srv.SetFault(sshtest.FaultDropConnections)
			srv.SetFault(sshtest.FaultNone)
			return
		}
		sshtest.ShellHandler(e)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	files, _ := srv.WriteClientFiles(t.TempDir())
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent), ConnectTimeout: 2 * time.Second})
	t.Cleanup(func() { pool.Close() })
	r, _ := pool.Host(files.Alias)

	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("old"), 0o644)
	// Of unknown size: two steps.
	err := r.Upload(context.Background(), sshx.File{Path: dst}, io.MultiReader(strings.NewReader("new")))
	if !dropped.Load() {
		t.Fatalf("the second step never ran (Upload = %v)", err)
	}
	if err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("Upload = %v, want the connection lost", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("file = %q, want the old content", got)
	}
	onlyFile(t, dir, "f")
}

func TestUploadReplacesByRename(t *testing.T) {
	t.Parallel()
	for name, h := range uploadHosts(t) {
		for _, c := range []struct {
			what string
			r    func(string) io.Reader
		}{
			{"known size", func(s string) io.Reader { return strings.NewReader(s) }},
			{"unknown size", func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }},
		} {
			t.Run(name+"/"+c.what, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				dst := filepath.Join(dir, "f")
				os.WriteFile(dst, []byte("old"), 0o644)
				// A reader holding the old file (a hard link stands for
				// an open descriptor) keeps the old content: the new file
				// is a new inode renamed into place.
				link := filepath.Join(t.TempDir(), "old")
				if err := os.Link(dst, link); err != nil {
					t.Fatal(err)
				}
				before, _ := os.Stat(dst)
				if err := h.Upload(context.Background(), sshx.File{Path: dst, Mode: 0o640}, c.r("new")); err != nil {
					t.Fatal(err)
				}
				after, _ := os.Stat(dst)
				if after.Sys().(*syscall.Stat_t).Ino == before.Sys().(*syscall.Stat_t).Ino {
					t.Errorf("the file kept its inode: it was rewritten in place")
				}
				if got, _ := os.ReadFile(dst); string(got) != "new" || after.Mode().Perm() != 0o640 {
					t.Errorf("file = %q mode %o, want %q mode 640", got, after.Mode().Perm(), "new")
				}
				if got, _ := os.ReadFile(link); string(got) != "old" {
					t.Errorf("the old inode now holds %q, want %q", got, "old")
				}
				onlyFile(t, dir, "f")
			})
		}
	}
}

func TestUploadFileSendsItsSize(t *testing.T) {
	t.Parallel()
	for name, h := range uploadHosts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), "src")
			os.WriteFile(src, bytes.Repeat([]byte("x"), 70000), 0o751)
			dir := t.TempDir()
			dst := filepath.Join(dir, "dst")
			if err := sshx.UploadFile(context.Background(), h, src, dst, 0, false); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(dst)
			if st.Size() != 70000 || st.Mode().Perm() != 0o751 {
				t.Errorf("uploaded %d bytes mode %o, want 70000 mode 751", st.Size(), st.Mode().Perm())
			}
			onlyFile(t, dir, "dst")
		})
	}
}
