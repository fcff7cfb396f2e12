package pypkg

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/sshx"
)

// systemPython is the interpreter virtualenvs are made with: Debian's,
// which has venv and ensurepip when python3-venv is installed.
const systemPython = "/usr/bin/python3"

// newVenv makes a virtualenv at dir, with pip or without, or skips the
// test when this machine cannot (it fails instead under CI=true).
func newVenv(t *testing.T, dir string, withPip bool) {
	t.Helper()
	args := []string{"-m", "venv", dir}
	if !withPip {
		args = []string{"-m", "venv", "--without-pip", dir}
	}
	if _, err := os.Stat(systemPython); err != nil {
		skipOrFail(t, systemPython+" is missing")
	}
	if out, err := exec.Command(systemPython, args...).CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("%s -m venv failed (Debian: apt-get install python3-venv): %v\n%s", systemPython, err, out))
	}
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

// buildWheel writes a pure-Python wheel of one module, offline: a zip of
// the module plus METADATA, WHEEL and RECORD.
func buildWheel(t *testing.T, dir, name, version, code string) string {
	t.Helper()
	distInfo := fmt.Sprintf("%s-%s.dist-info", name, version)
	files := [][2]string{
		{name + "/__init__.py", code},
		{distInfo + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)},
		{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: pypkg-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", name, version))
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(fh)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
		sum := sha256.Sum256([]byte(f[1]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f[0], base64.RawURLEncoding.EncodeToString(sum[:]), len(f[1]))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", distInfo)
	w, err := zw.Create(distInfo + "/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func python(t *testing.T, venv, code string) (string, error) {
	t.Helper()
	out, err := exec.Command(filepath.Join(venv, "bin", "python"), "-c", code).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// noLeftovers checks that Install removed its temporary directory.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(dir, ".pypkg-*")); len(left) > 0 {
		t.Errorf("Install left %v behind", left)
	}
}

// offlinePip installs without an index: sdists are built with the
// virtualenv's own setuptools.
var offlinePip = []string{"pip", "install", "--quiet", "--no-index", "--no-build-isolation"}

func TestInstall(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	venv := filepath.Join(root, "app", "env")
	newVenv(t, venv, true)
	ctx := context.Background()

	// The sdist is the archive of a git package (with a submodule), as
	// Fetch makes it; pip builds it with setuptools, offline.
	var archives []string
	imports := "import wheelpkg; print(wheelpkg.NAME)"
	want := "wheel"
	if _, err := python(t, venv, "import setuptools"); err == nil {
		sdist, err := (&Fetcher{CacheDir: filepath.Join(root, "cache")}).Fetch(ctx,
			Package{Name: "hellopkg", GitURL: newPythonRepo(t, root), Ref: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, sdist)
		imports = "import hellopkg, hellopkg.vendored, wheelpkg; print(hellopkg.GREETING, hellopkg.vendored.VALUE, wheelpkg.NAME)"
		want = "hello 42 wheel"
	} else {
		t.Log("no setuptools in the virtualenv: installing the wheel only")
	}
	archives = append(archives, buildWheel(t, t.TempDir(), "wheelpkg", "0.1", "NAME = 'wheel'\n"))

	h := sshx.NewLocal("")
	if err := Install(ctx, h, venv, archives, offlinePip); err != nil {
		t.Fatal(err)
	}
	if got, err := python(t, venv, imports); err != nil || got != want {
		t.Errorf("%s: %q, %v, want %q", imports, got, err, want)
	}
	if n := h.Stats().Sessions; n != 1 {
		t.Errorf("Install used %d sessions, want 1", n)
	}
	noLeftovers(t, filepath.Dir(venv))

	// A broken archive: pip fails, the error says so and ends with pip's
	// output, and nothing is left behind.
	bogus := filepath.Join(root, "bogus-1.0.tar.gz")
	if err := os.WriteFile(bogus, []byte("not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Install(ctx, sshx.NewLocal("web1"), venv, []string{bogus}, offlinePip)
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Install of a broken archive: %v, want an *sshx.ExitError", err)
	}
	if w := "pypkg: web1: installing bogus-1.0.tar.gz into " + venv + ": exited with status "; !strings.HasPrefix(err.Error(), w) {
		t.Errorf("error = %v, want it to start with %q", err, w)
	}
	if !strings.Contains(err.Error(), "not a gzip file") {
		t.Errorf("error = %v, want it to end with what pip said", err)
	}
	noLeftovers(t, filepath.Dir(venv))
}

func TestInstallWithoutPipInVenv(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command("python3", "-c", "import pip, sys; sys.exit(tuple(map(int, pip.__version__.split('.')[:2])) < (22, 3))").CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("python3 on PATH has no pip >= 22.3 for pip --python: %v %s", err, out))
	}
	root := t.TempDir()
	venv := filepath.Join(root, "env")
	newVenv(t, venv, false)
	whl := buildWheel(t, root, "barepkg", "2.0", "OK = True\n")
	if err := Install(context.Background(), sshx.NewLocal(""), venv, []string{whl}, []string{"pip", "install", "--no-index", "--quiet"}); err != nil {
		t.Fatal(err)
	}
	if got, err := python(t, venv, "import barepkg; print(barepkg.OK)"); err != nil || got != "True" {
		t.Errorf("import barepkg: %q, %v, want True", got, err)
	}
}

func TestInstallErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	bogus := filepath.Join(root, "bogus-1.0.tar.gz")
	if err := os.WriteFile(bogus, []byte("not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := sshx.NewLocal("")

	notVenv := filepath.Join(root, "plain")
	os.MkdirAll(notVenv, 0o755)
	err := Install(ctx, h, notVenv, []string{bogus}, nil)
	if err == nil || !strings.Contains(err.Error(), "is not a virtualenv: it has no bin/python") {
		t.Errorf("Install into a plain directory: %v, want a not-a-virtualenv error", err)
	}
	noLeftovers(t, root)

	for _, c := range []struct {
		venv     string
		archives []string
		want     string
	}{
		{"", []string{bogus}, `virtualenv "" is empty`},
		{"-env", []string{bogus}, `virtualenv "-env" starts with '-'`},
		{"/", []string{bogus}, "is not a virtualenv directory"},
		{notVenv, []string{filepath.Join(root, "missing.whl")}, "missing.whl"},
	} {
		if err := Install(ctx, h, c.venv, c.archives, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Install(%q, %q) = %v, want an error containing %q", c.venv, c.archives, err, c.want)
		}
	}
	if err := Install(ctx, h, "/nonexistent", nil, nil); err != nil {
		t.Errorf("Install of no archives = %v, want nil", err)
	}
}

func TestRunInstallScripts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"scripts/one.sh": "#!/bin/sh\necho \"one $1 $VIRTUAL_ENV\" >> out.txt\n",
		"two it.sh":      "#!/bin/sh\necho \"two $1\" >> out.txt\n",
		"fail.sh":        "#!/bin/sh\necho broken >&2\nexit 3\n",
		"plain.txt":      "",
	})
	venv := "/srv/app/env it's"
	ctx := context.Background()
	h := sshx.NewLocal("")
	if err := RunInstallScripts(ctx, h, dir, []string{"scripts/one.sh", "./two it.sh"}, venv); err != nil {
		t.Fatal(err)
	}
	want := "one " + venv + " " + venv + "\ntwo " + venv + "\n"
	if got := string(readFile(t, filepath.Join(dir, "out.txt"))); got != want {
		t.Errorf("the scripts wrote %q, want %q", got, want)
	}

	for _, c := range []struct {
		scripts []string
		want    string
	}{
		{[]string{"fail.sh", "scripts/one.sh"}, "install script fail.sh failed with status 3"},
		{[]string{"plain.txt"}, "install script plain.txt is not executable"},
		{[]string{"nope.sh"}, "install script nope.sh is missing"},
		{[]string{"../x.sh"}, `install script "../x.sh" has a ".." element`},
		{[]string{"/bin/true"}, `install script "/bin/true" is an absolute path`},
		{[]string{""}, `install script "" is empty`},
	} {
		err := RunInstallScripts(ctx, h, dir, c.scripts, venv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RunInstallScripts(%q) = %v, want an error containing %q", c.scripts, err, c.want)
		}
	}
	if got := string(readFile(t, filepath.Join(dir, "out.txt"))); got != want {
		t.Errorf("a failed script did not stop the rest: out.txt = %q", got)
	}
}
