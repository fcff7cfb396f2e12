package pypkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fetchGit clones p.GitURL into CacheDir/git/<name> (or updates the clone
// there), checks out p.Ref with its submodules, and packs the tracked
// files into CacheDir/<name>-<ref>.tar.gz under the top directory <name>/.
func (f *Fetcher) fetchGit(ctx context.Context, p Package) (string, error) {
	archive := filepath.Join(f.CacheDir, p.Name+"-"+strings.ReplaceAll(p.Ref, "/", "_")+".tar.gz")
	if isCommitID(p.Ref) {
		if st, err := os.Stat(archive); err == nil && st.Mode().IsRegular() {
			f.logf("%s: cached %s (commit %s)", p.Name, archive, p.Ref)
			return archive, nil
		}
	}
	f.gitMu.Lock()
	defer f.gitMu.Unlock()

	url, err := resolveGitURL(p)
	if err != nil {
		return "", err
	}
	g := &gitRunner{ctx: ctx, bin: f.Git, local: isLocalGitURL(url)}
	if g.bin == "" {
		g.bin = "git"
	}
	clone := filepath.Join(f.CacheDir, "git", p.Name)
	f.logf("%s: fetching %s at %s", p.Name, url, p.Ref)
	if err := g.update(clone, url); err != nil {
		return "", err
	}
	commit, err := g.resolve(clone, p.Ref)
	if err != nil {
		return "", err
	}
	steps := [][]string{
		{"checkout", "--quiet", "--force", "--detach", commit},
		{"submodule", "--quiet", "sync", "--recursive"},
		{"submodule", "--quiet", "update", "--init", "--recursive", "--force"},
	}
	for _, args := range steps {
		if _, err := g.run(clone, args...); err != nil {
			return "", err
		}
	}
	list, err := g.run(clone, "ls-files", "-z", "--recurse-submodules")
	if err != nil {
		return "", err
	}
	stamp, err := g.run(clone, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return "", err
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(stamp), 10, 64)
	if err != nil {
		return "", fmt.Errorf("reading the commit time of %s: %q", p.Ref, stamp)
	}
	var files []string
	for _, name := range strings.Split(list, "\x00") {
		if name != "" {
			files = append(files, name)
		}
	}
	if err := writeTarGz(archive, clone, p.Name, files, time.Unix(secs, 0)); err != nil {
		return "", fmt.Errorf("packing %s at %s: %w", url, p.Ref, err)
	}
	return archive, nil
}

// isCommitID reports whether ref is a full SHA-1 or SHA-256 commit id,
// which always names the same tree.
func isCommitID(ref string) bool {
	if len(ref) != 40 && len(ref) != 64 {
		return false
	}
	for _, r := range ref {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// isLocalGitURL reports whether url is a path or a file:// URL rather
// than a network URL (scheme://...) or scp-like host:path.
func isLocalGitURL(url string) bool {
	if strings.HasPrefix(url, "file://") {
		return true
	}
	if strings.Contains(url, "://") {
		return false
	}
	colon := strings.IndexByte(url, ':')
	return colon < 0 || strings.Contains(url[:colon], "/")
}

// resolveGitURL makes a relative path in p.GitURL relative to the
// directory of the file that lists p.
func resolveGitURL(p Package) (string, error) {
	url := p.GitURL
	if !isLocalGitURL(url) || strings.HasPrefix(url, "file://") || filepath.IsAbs(url) {
		return url, nil
	}
	base := "."
	if p.File != "" {
		base = filepath.Dir(p.File)
	}
	abs, err := filepath.Abs(filepath.Join(base, url))
	if err != nil {
		return "", err
	}
	return abs, nil
}

// gitRunner runs git commands for one package.
type gitRunner struct {
	ctx context.Context
	bin string
	// local allows submodules from local paths (git refuses them by
	// default since 2.38.1); only set for a repository that is itself
	// local.
	local bool
}

// run runs git in dir and returns its standard output; the error holds
// the end of its standard error.
func (g *gitRunner) run(dir string, args ...string) (string, error) {
	full := []string{"-c", "protocol.ext.allow=never"}
	if g.local {
		full = append(full, "-c", "protocol.file.allow=always")
	}
	full = append(full, args...)
	cmd := exec.CommandContext(g.ctx, g.bin, full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		if ctxErr := g.ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// update makes clone an up-to-date clone of url: fetched when it already
// is one, cloned afresh otherwise (or when the fetch fails).
func (g *gitRunner) update(clone, url string) error {
	// Without a .git of its own, git would find a repository above clone.
	if _, err := os.Stat(filepath.Join(clone, ".git")); err == nil {
		origin, err := g.run(clone, "config", "--get", "remote.origin.url")
		if err == nil && strings.TrimSpace(origin) == url {
			_, err = g.run(clone, "fetch", "--quiet", "--force", "--tags", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*")
			if err == nil || g.ctx.Err() != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(clone); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(clone), 0o755); err != nil {
		return err
	}
	_, err := g.run("", "clone", "--quiet", "--no-checkout", "--", url, clone)
	return err
}

// resolve returns the commit ref names in clone: a branch as on the
// remote, else a tag or a commit.
func (g *gitRunner) resolve(clone, ref string) (string, error) {
	for _, rev := range []string{"refs/remotes/origin/" + ref, ref} {
		out, err := g.run(clone, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
		if err == nil {
			return strings.TrimSpace(out), nil
		}
		if g.ctx.Err() != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("ref %q is not a branch, tag or commit of the repository", ref)
}

// writeTarGz writes the files (paths relative to root, as git lists them)
// to a gzipped tar at dst under the directory prefix/, every entry with
// time mtime, owner 0 and mode 0644 or 0755: the same tree gives the same
// archive. The archive replaces dst atomically.
func writeTarGz(dst, root, prefix string, files []string, mtime time.Time) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	fh, err := os.CreateTemp(filepath.Dir(dst), ".pack-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			fh.Close()
			os.Remove(fh.Name())
		}
	}()
	zw, _ := gzip.NewWriterLevel(fh, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	var addDir func(string) error
	addDir = func(d string) error {
		if dirs[d] {
			return nil
		}
		if parent := path.Dir(d); parent != "." {
			if err := addDir(parent); err != nil {
				return err
			}
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + "/" + d + "/", Mode: 0o755, ModTime: mtime})
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + "/", Mode: 0o755, ModTime: mtime}); err != nil {
		return err
	}
	for _, name := range files {
		if d := path.Dir(name); d != "." {
			if err := addDir(d); err != nil {
				return err
			}
		}
		if err := addFile(tw, filepath.Join(root, filepath.FromSlash(name)), prefix+"/"+name, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := fh.Chmod(0o644); err != nil {
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(fh.Name(), dst); err != nil {
		return err
	}
	ok = true
	return nil
}

func addFile(tw *tar.Writer, src, name string, mtime time.Time) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, ModTime: mtime, Mode: 0o644}
	switch {
	case st.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		return tw.WriteHeader(hdr)
	case st.Mode().IsDir():
		// A submodule that is not checked out (update = none in
		// .gitmodules): nothing of it to pack.
		return nil
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", name)
	}
	if st.Mode()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size()
	fh, err := os.Open(src)
	if err != nil {
		return err
	}
	defer fh.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, fh, st.Size()); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
