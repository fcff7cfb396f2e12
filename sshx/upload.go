package sshx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
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
// It is always one command. When r cannot tell its size in advance
// (bytes.Reader, strings.Reader, bytes.Buffer and regular files can), it
// is first copied into a local temporary file: a reader that fails then
// fails before the host is asked for anything.
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
	n, ok := knownSize(r)
	if !ok {
		spool, size, err := spoolLocally(r)
		if err != nil {
			return fmt.Errorf("sshx: %s: upload to %s: reading the data: %w (the old file is kept)", h.Name(), f.Path, err)
		}
		defer spool.Close()
		r, n = spool, size
	}
	dir, base := path.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	u := &uploader{h: h, f: f, mode: mode, tmp: path.Join(dir, "."+base+"."+hex.EncodeToString(suffix[:])), src: &trackingReader{r: r}}
	return u.run(ctx, n)
}

// spoolLocally copies r into an unlinked local temporary file and returns
// it rewound, with its size.
func spoolLocally(r io.Reader) (*os.File, int64, error) {
	fh, err := os.CreateTemp("", "sshx-upload-*")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(fh.Name())
	n, err := io.Copy(fh, r)
	if err == nil {
		_, err = fh.Seek(0, io.SeekStart)
	}
	if err != nil {
		fh.Close()
		return nil, 0, err
	}
	return fh, n, nil
}

type uploader struct {
	h    Host
	f    File
	mode uint32
	tmp  string // the temporary file beside the destination, named here
	src  *trackingReader
}

// sizeMismatch begins the script's complaint that the temporary file does
// not hold the bytes sent.
const sizeMismatch = "sshx: the host received "

// existsStatus is the script's exit status when the temporary name is
// taken; that file is left alone: it is not this upload's.
const existsStatus = 73

// receiveScript runs on the host in a session of its own, with the
// temporary path, the size, the mode and the destination as $1..$4. It
// creates the temporary file with its one open (noclobber: a name that
// appeared meanwhile is refused, not truncated, and nothing opens it by
// name again), copies standard input into it, and renames it over the
// destination only when it holds exactly the size's bytes.
//
// Why no temporary file can outlive it: the EXIT trap removes the name on
// every way out (after the rename there is nothing left under it), and
// the ways out do not depend on a signal arriving in time. The script
// runs in its own session (setsid), so the TERM and the KILL that a
// cancel sends to the command's process group never reach it; it only
// ends by running to its end. A cancel or a lost connection close its
// standard input, so cat ends, the size check fails, and the trap runs.
// setsid creates the new session before this script starts, so a signal
// to the group that comes earlier ends it before the file exists.
const receiveScript = `t=$1
trap 'rm -f -- "$t"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM
set -C
cat > "$t" || exit
set -- "$@" $(wc -c < "$t")
[ "$5" = "$2" ] || { echo "` + sizeMismatch + `${5:-no} bytes of $2; the old file is kept" >&2; exit 1; }
chmod "$3" "$t" && mv -f "$t" "$4"`

// uploadScript receives n bytes and installs them: a check that the
// temporary name is free, then receiveScript in a session of its own.
func (u *uploader) uploadScript(n int64) string {
	return "umask 077; t=" + Quote(u.tmp) + "; " +
		"[ ! -e \"$t\" ] && [ ! -L \"$t\" ] || exit " + strconv.Itoa(existsStatus) + "; " +
		"exec setsid -w /bin/sh -c " + Quote(receiveScript) + " sshx-upload \"$t\" " +
		strconv.FormatInt(n, 10) + " " + strconv.FormatUint(uint64(u.mode), 8) + " " + Quote(u.f.Path)
}

// run sends n bytes and installs them in one command.
func (u *uploader) run(ctx context.Context, n int64) error {
	cmd := u.h.Script(ctx, u.uploadScript(n))
	cmd.Sudo = u.f.Sudo
	cmd.Stdin = u.src
	err := cmd.Run()
	// A script that ran to its end has removed the file already (its
	// status is receiveScript's). Else (cancelled, connection lost,
	// killed) receiveScript does it on the host once its input closes;
	// the removal here makes it done before Upload returns whenever the
	// host can still be reached.
	var ee *ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Signal == "" && ee.Status > 0 && ee.Status < 128) {
		u.remove(ctx)
	}
	return u.result(err)
}

// remove removes the temporary file, on a context of its own with a short
// timeout: ctx may be done, and the host unreachable.
func (u *uploader) remove(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rm := u.h.Command(ctx, "rm", "-f", "--", u.tmp)
	rm.Sudo = u.f.Sudo
	rm.Run()
}

// result reports the reader's failure first: the host's complaint about
// missing bytes only follows from it.
func (u *uploader) result(err error) error {
	if rerr := u.src.Err(); rerr != nil {
		return fmt.Errorf("sshx: %s: upload to %s: reading the data: %w (the old file is kept)", u.h.Name(), u.f.Path, rerr)
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Status == existsStatus {
		return fmt.Errorf("sshx: %s: upload to %s: the temporary name %s is taken; try again: %w", u.h.Name(), u.f.Path, u.tmp, err)
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

// UploadFile copies the file local to f.Path on h with h.Upload: atomically,
// as root when f.Sudo is set. Unlike Upload, it takes a zero f.Mode to mean
// the local file's permission bits.
func UploadFile(ctx context.Context, h Host, f File, local string) error {
	fh, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("sshx: upload: %w", err)
	}
	defer fh.Close()
	if f.Mode == 0 {
		st, err := fh.Stat()
		if err != nil {
			return fmt.Errorf("sshx: upload: %w", err)
		}
		f.Mode = uint32(st.Mode().Perm())
	}
	return h.Upload(ctx, f, fh)
}
