package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// upload writes r to f.Path on h: into a temporary file beside the
// destination, then chmod, then rename over it, so that a reader never
// sees a partial file. The rename happens only when the host holds every
// byte: the script compares the temporary file's size with the number of
// bytes the reader gave. A reader that fails, a cancel or a lost
// connection leave the old file as it was and no temporary file behind.
//
// When the size is known in advance (bytes.Reader, strings.Reader,
// bytes.Buffer, a regular file) this is one command; otherwise the data
// is sent by one command and the file put in place by a second, once the
// reader has reached EOF.
func upload(ctx context.Context, h Host, f File, r io.Reader) error {
	if f.Path == "" || f.Path[len(f.Path)-1] == '/' {
		return fmt.Errorf("sshx: %s: upload: destination %q is not a file path", h.Name(), f.Path)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if mode&^0o7777 != 0 {
		return fmt.Errorf("sshx: %s: upload: mode %o is not a permission mode", h.Name(), mode)
	}
	dir, base := path.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	u := &uploader{h: h, f: f, mode: mode, template: path.Join(dir, "."+base+".XXXXXX"), src: &trackingReader{r: r}}
	if n, ok := knownSize(r); ok {
		return u.oneStep(ctx, n)
	}
	return u.twoSteps(ctx)
}

type uploader struct {
	h        Host
	f        File
	mode     uint32
	template string // mktemp template beside the destination
	src      *trackingReader
}

// cleanupTraps make the script remove its temporary file when the command
// is stopped (a cancel sends TERM to the process group).
const cleanupTraps = `t=; trap 'rm -f "$t"; exit 129' HUP; trap 'rm -f "$t"; exit 130' INT; ` +
	`trap 'rm -f "$t"; exit 141' PIPE; trap 'rm -f "$t"; exit 143' TERM; `

// receive is the part of the script that makes the temporary file and
// copies standard input into it, removing it if that fails.
func (u *uploader) receive() string {
	return cleanupTraps + "t=$(mktemp " + Quote(u.template) + ") || exit; "
}

// sizeMismatch begins the install script's complaint that the temporary
// file does not hold the bytes sent; it is printed once the file is gone.
const sizeMismatch = "sshx: the host received "

// install is the part of the script that puts "$t" in place if it holds
// exactly n bytes, and removes it otherwise.
func (u *uploader) install(n int64) string {
	size := strconv.FormatInt(n, 10)
	return "set -- $(wc -c < \"$t\"); " +
		"[ \"$1\" = " + size + " ] || { rm -f \"$t\"; echo \"" + sizeMismatch + "${1:-no} bytes of " + size + "; the old file is kept\" >&2; exit 1; }; " +
		"chmod " + strconv.FormatUint(uint64(u.mode), 8) + " \"$t\" && mv -f \"$t\" " + Quote(u.f.Path) + " || { s=$?; rm -f \"$t\"; exit $s; }"
}

const copyIn = "cat > \"$t\" || { s=$?; rm -f \"$t\"; exit $s; }; "

// oneStep sends n bytes and installs them in one command.
func (u *uploader) oneStep(ctx context.Context, n int64) error {
	cmd := u.h.Script(ctx, u.receive()+copyIn+u.install(n))
	cmd.Sudo = u.f.Sudo
	cmd.Stdin = u.src
	return u.result(cmd.Run())
}

// twoSteps sends the data into a temporary file, and then, if the reader
// reached EOF, installs it with a second command; else removes it.
func (u *uploader) twoSteps(ctx context.Context) error {
	cmd := u.h.Script(ctx, u.receive()+"printf '%s\\n' \"$t\"; "+copyIn)
	cmd.Sudo = u.f.Sudo
	cmd.Stdin = u.src
	var out strings.Builder
	cmd.Stdout = &out
	err := cmd.Run()
	tmp, named := strings.CutSuffix(out.String(), "\n")
	if named {
		named = strings.HasPrefix(tmp, strings.TrimSuffix(u.template, "XXXXXX")) && !strings.ContainsAny(tmp, "\n\x00")
	}
	if err == nil && !named {
		err = fmt.Errorf("sshx: %s: mktemp printed %q, not a file beside %s", u.h.Name(), out.String(), u.f.Path)
	}
	if err != nil || u.src.Err() != nil {
		if named {
			u.remove(ctx, tmp)
		}
		return u.result(err)
	}
	finish := u.h.Script(ctx, "t="+Quote(tmp)+"; "+u.install(u.src.N()))
	finish.Sudo = u.f.Sudo
	err = finish.Run()
	// Unless the host said it found the size wrong (it removed the file
	// then), the second command may have stopped short of the rename: it
	// was cancelled, the connection was lost, it did not start. (When the
	// rename or chmod failed the script removed the file too; removing
	// it again costs a command, nothing more.)
	var ee *ExitError
	if err != nil && !(errors.As(err, &ee) && bytes.Contains(ee.Stderr, []byte(sizeMismatch))) {
		u.remove(ctx, tmp)
	}
	return u.result(err)
}

// remove removes the temporary file left by a failed step, on a context of
// its own with a short timeout: ctx may be done, and the host unreachable.
func (u *uploader) remove(ctx context.Context, tmp string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rm := u.h.Command(ctx, "rm", "-f", tmp)
	rm.Sudo = u.f.Sudo
	rm.Run()
}

// result reports the reader's failure first: the host's complaint about
// missing bytes only follows from it.
func (u *uploader) result(err error) error {
	if rerr := u.src.Err(); rerr != nil {
		return fmt.Errorf("sshx: %s: upload to %s: reading the data: %w (the old file is kept)", u.h.Name(), u.f.Path, rerr)
	}
	if err != nil {
		return fmt.Errorf("sshx: %s: upload to %s: %w", u.h.Name(), u.f.Path, err)
	}
	return nil
}

// knownSize returns how many bytes r will give, when it can tell.
func knownSize(r io.Reader) (int64, bool) {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len()), true
	case *os.File:
		st, err := v.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return 0, false
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil || off > st.Size() {
			return 0, false
		}
		return st.Size() - off, true
	}
	return 0, false
}

// trackingReader counts the bytes read and keeps the first error other
// than EOF.
type trackingReader struct {
	r io.Reader

	mu  sync.Mutex
	n   int64
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.mu.Lock()
	t.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	return n, err
}

func (t *trackingReader) N() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *trackingReader) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// UploadFile copies a local file to the host atomically, with mode (zero
// means the local file's permission bits).
func UploadFile(ctx context.Context, h Host, local, remote string, mode uint32, sudo bool) error {
	fh, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("sshx: upload: %w", err)
	}
	defer fh.Close()
	if mode == 0 {
		st, err := fh.Stat()
		if err != nil {
			return fmt.Errorf("sshx: upload: %w", err)
		}
		mode = uint32(st.Mode().Perm())
	}
	return upload(ctx, h, File{Path: remote, Mode: mode, Sudo: sudo}, fh)
}
