package sshx

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
)

// upload writes r to f.Path on h in one command: into a temporary file
// beside the destination, then chmod, then rename over it, so a reader
// never sees a partial file and a failed upload leaves the old one.
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
	script := "t=$(mktemp " + Quote(path.Join(dir, "."+base+".XXXXXX")) + ") && " +
		"{ cat > \"$t\" && chmod " + fmt.Sprintf("%o", mode) + " \"$t\" && mv -f \"$t\" " + Quote(f.Path) + "; } || { s=$?; rm -f \"$t\"; exit $s; }"
	cmd := h.Script(ctx, script)
	cmd.Sudo = f.Sudo
	cmd.Stdin = r
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sshx: %s: upload to %s: %w", h.Name(), f.Path, err)
	}
	return nil
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
