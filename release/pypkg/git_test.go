package pypkg

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// git runs git in dir for a test, isolated from the user's configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "protocol.file.allow=always"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// newRepo makes a git repository at dir holding files, committed on main.
func newRepo(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q", "-b", "main")
	writeFiles(t, dir, files)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "initial")
}

// newPythonRepo makes the repository of the package "hellopkg" under
// root/hellopkg, whose module hellopkg.vendored comes from a submodule
// (root/vendored), tagged v1. It returns the repository's path.
func newPythonRepo(t *testing.T, root string) string {
	t.Helper()
	sub := filepath.Join(root, "vendored")
	newRepo(t, sub, map[string]string{"__init__.py": "VALUE = 42\n"})
	repo := filepath.Join(root, "hellopkg")
	newRepo(t, repo, map[string]string{
		"setup.py":             "from setuptools import setup\nsetup(name='hellopkg', version='1.0', packages=['hellopkg', 'hellopkg.vendored'])\n",
		"hellopkg/__init__.py": "GREETING = 'hello'\n",
		"bin/post-install.sh":  "#!/bin/sh\n",
	})
	git(t, repo, "submodule", "--quiet", "add", sub, "hellopkg/vendored")
	git(t, repo, "commit", "-q", "-m", "add the vendored submodule")
	git(t, repo, "tag", "v1")
	return repo
}

// tarEntries lists an archive.tar.gz: name -> mode, and the content of
// regular files.
func tarEntries(t *testing.T, path string) (map[string]int64, map[string]string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	modes, bodies := map[string]int64{}, map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			bodies[h.Name] = string(b)
		}
	}
	return modes, bodies
}

func TestFetchGitWithSubmodule(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	repo := newPythonRepo(t, root)
	f := &Fetcher{CacheDir: filepath.Join(root, "cache")}
	p := Package{Name: "hellopkg", GitURL: repo, Ref: "v1", File: "private.txt", Line: 1}
	path, err := f.Fetch(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.CacheDir, "hellopkg-v1.tar.gz"); path != want {
		t.Errorf("Fetch = %s, want %s", path, want)
	}
	modes, bodies := tarEntries(t, path)
	if got := bodies["hellopkg/hellopkg/vendored/__init__.py"]; got != "VALUE = 42\n" {
		t.Errorf("the submodule's file holds %q, want %q; archive has %v", got, "VALUE = 42\n", slices.Sorted(mapsKeys(modes)))
	}
	for _, name := range []string{"hellopkg/", "hellopkg/setup.py", "hellopkg/hellopkg/__init__.py", "hellopkg/.gitmodules"} {
		if _, ok := modes[name]; !ok {
			t.Errorf("archive lacks %s", name)
		}
	}
	if m := modes["hellopkg/bin/post-install.sh"]; m != 0o755 {
		t.Errorf("mode of bin/post-install.sh = %o, want 755", m)
	}
	for name := range modes {
		if !strings.HasPrefix(name, "hellopkg/") || strings.Contains(name, ".git/") || strings.HasSuffix(name, "/.git") {
			t.Errorf("archive has %s, want only files under hellopkg/ and no .git", name)
		}
	}
}

func mapsKeys(m map[string]int64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestFetchGitFollowsBranch(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	repo := filepath.Join(root, "lib")
	newRepo(t, repo, map[string]string{"lib.py": "V = 1\n"})
	// A relative URL is relative to the file that lists the package.
	p := Package{Name: "lib", GitURL: "../lib", Ref: "main", File: filepath.Join(root, "req", "private.txt"), Line: 1}
	f := &Fetcher{CacheDir: filepath.Join(root, "cache")}
	ctx := context.Background()
	path, err := f.Fetch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, bodies := tarEntries(t, path); bodies["lib/lib.py"] != "V = 1\n" {
		t.Fatalf("first fetch: lib.py = %q", bodies["lib/lib.py"])
	}
	writeFiles(t, repo, map[string]string{"lib.py": "V = 2\n"})
	git(t, repo, "commit", "-q", "-am", "two")
	path, err = f.Fetch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, bodies := tarEntries(t, path); bodies["lib/lib.py"] != "V = 2\n" {
		t.Errorf("after a new commit on main: lib.py = %q, want %q", bodies["lib/lib.py"], "V = 2\n")
	}

	// A full commit id always names the same tree: its archive is reused
	// without git, even when the repository is gone.
	commit := git(t, repo, "rev-parse", "HEAD")
	pc := Package{Name: "lib", GitURL: "file://" + repo, Ref: commit}
	first, err := f.Fetch(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(repo); err != nil {
		t.Fatal(err)
	}
	if again, err := f.Fetch(ctx, pc); err != nil || again != first {
		t.Errorf("Fetch of a cached commit = %s, %v, want %s", again, err, first)
	}
}

func TestFetchGitErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	repo := filepath.Join(root, "lib")
	newRepo(t, repo, map[string]string{"lib.py": ""})
	f := &Fetcher{CacheDir: filepath.Join(root, "cache")}
	for _, c := range []struct {
		p    Package
		want []string
	}{
		{Package{Name: "lib", GitURL: repo, Ref: "v9", File: "private.txt", Line: 5},
			[]string{"pypkg: private.txt:5: package lib:", `ref "v9" is not a branch, tag or commit`}},
		{Package{Name: "gone", GitURL: filepath.Join(root, "nothere"), Ref: "main", File: "private.txt", Line: 6},
			[]string{"pypkg: private.txt:6: package gone:", "git clone", "nothere"}},
		{Package{Name: "lib", GitURL: repo, Ref: "-x", File: "private.txt", Line: 7},
			[]string{"pypkg: private.txt:7: package lib:", `git ref "-x" starts with '-'`}},
	} {
		_, err := f.Fetch(context.Background(), c.p)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Fetch(%v) error = %v, want an *Error", c.p, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Fetch(%v) error = %v, want it to contain %q", c.p, err, w)
			}
		}
	}
}
