package sshx_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
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

// waitForEntries waits until dir holds n entries: the event a test needs
// (the host has made its temporary file). The deadline only catches an
// event that never comes.
func waitForEntries(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		if len(entries) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d entries after 30s, want %d", dir, len(entries), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sizedStallingReader claims more bytes than it gives before it stalls:
// the host has a temporary file open and is waiting for the rest.
type sizedStallingReader struct{ stallingReader }

func (s *sizedStallingReader) Len() int { return 1 << 20 }

// stalledUpload starts an upload over an old file "f" in a new dir, of a
// reader that gives a few bytes of the many it promises and then stalls
// until stall is done, and returns once the host has made its temporary
// file: the dir and the channel Upload's result arrives on.
func stalledUpload(t *testing.T, ctx context.Context, h sshx.Host, stall context.Context) (string, <-chan error) {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("old"), 0o644)
	r := &sizedStallingReader{stallingReader{ctx: stall, got: make(chan struct{})}}
	errc := make(chan error, 1)
	go func() { errc <- h.Upload(ctx, sshx.File{Path: dst}, r) }()
	<-r.got
	waitForEntries(t, dir, 2)
	return dir, errc
}

// keptOld fails unless dir's file "f" still holds "old".
func keptOld(t *testing.T, dir string) {
	t.Helper()
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "old" {
		t.Errorf("file = %q, want the old content", got)
	}
}

// A cancel while the host is receiving: when Upload returns the old file
// is in place and the temporary file is gone, with no wait.
func TestUploadCancelLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	for name, h := range uploadHosts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			dir, errc := stalledUpload(t, ctx, h, ctx)
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Upload = %v, want context.Canceled", err)
			}
			keptOld(t, dir)
			onlyFile(t, dir, "f")
		})
	}
}

// A reader of unknown size that fails is found out before the host is
// asked for anything: it is read to its end locally first.
func TestUploadUnknownSizeFailsBeforeTheHost(t *testing.T) {
	t.Parallel()
	srv, _, r, _ := newHost(t, nil)
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("old"), 0o644)
	boom := errors.New("disk on fire")
	err := r.Upload(context.Background(), sshx.File{Path: dst}, &brokenReader{data: []byte("new data"), n: 4, err: boom})
	if !errors.Is(err, boom) {
		t.Errorf("Upload = %v, want the reader's error", err)
	}
	if cmds := srv.Commands(); len(cmds) != 0 {
		t.Errorf("the host ran %q, want nothing", cmds)
	}
	onlyFile(t, dir, "f")
}

// The connection is lost while the host receives: the temporary file the
// host was filling is removed all the same, and the old file stays.
func TestUploadLostConnectionLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	srv, _, r, _ := newHost(t, nil)
	stall, stop := context.WithCancel(context.Background())
	defer stop()
	dir, errc := stalledUpload(t, context.Background(), r, stall)
	srv.SetFault(sshtest.FaultDropConnections)
	srv.SetFault(sshtest.FaultNone)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("Upload = %v, want the connection lost", err)
	}
	keptOld(t, dir)
	// The client removes the file over a new connection when it can; the
	// host removes it by itself when its input closes: either way it goes.
	waitForEntries(t, dir, 1)
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
			if err := sshx.UploadFile(context.Background(), h, sshx.File{Path: dst}, src); err != nil {
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
