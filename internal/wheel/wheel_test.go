package wheel

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
)

// members reads a wheel: its files and their content, after checking
// that RECORD lists each of them with the right hash.
func members(t *testing.T, path string) map[string]string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]string{}
	record := ""
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(b)
		if strings.HasSuffix(f.Name, ".dist-info/RECORD") {
			record = string(b)
		}
	}
	for name, body := range files {
		sum := sha256.Sum256([]byte(body))
		want := name + ",sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]) + ","
		if !strings.HasSuffix(name, "/RECORD") && !strings.Contains(record, want) {
			t.Errorf("%s: RECORD lacks %s\n%s", filepath.Base(path), want, record)
		}
	}
	if strings.Count(record, "\n") != len(files) {
		t.Errorf("%s: RECORD has %d lines for %d files:\n%s", filepath.Base(path), strings.Count(record, "\n"), len(files), record)
	}
	return files
}

func names(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestBuild(t *testing.T) {
	path, err := Build(t.TempDir(), "magefab-testdep", "1.0", "NAME = 'x'\n")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "magefab_testdep-1.0-py3-none-any.whl" {
		t.Errorf("Build wrote %s", path)
	}
	files := members(t, path)
	want := []string{"magefab_testdep-1.0.dist-info/METADATA", "magefab_testdep-1.0.dist-info/RECORD", "magefab_testdep-1.0.dist-info/WHEEL", "magefab_testdep/__init__.py"}
	if got := names(files); !slices.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if files["magefab_testdep/__init__.py"] != "NAME = 'x'\n" || !strings.Contains(files["magefab_testdep-1.0.dist-info/METADATA"], "Name: magefab-testdep\nVersion: 1.0\n") {
		t.Errorf("files: %q", files)
	}
}

func TestRequirementNames(t *testing.T) {
	text := "# comment\nDjango>=3.2,<5\n\n-r common.txt\n--find-links /srv\ngunicorn  # serves it\nrequests[security] (>=2)\ntzdata; sys_platform == \"win32\"\nzope.interface==5.4\n"
	want := []string{"Django", "gunicorn", "requests", "tzdata", "zope.interface"}
	if got := RequirementNames(text); !slices.Equal(got, want) {
		t.Errorf("RequirementNames = %q, want %q", got, want)
	}
	for _, c := range []struct {
		in     string
		name   string
		marker string
		extra  bool
	}{
		{"asgiref (>=3.2)", "asgiref", "", false},
		{`bcrypt; extra == "bcrypt"`, "bcrypt", `extra == "bcrypt"`, true},
		{`typing-extensions; python_version < "3.8"`, "typing-extensions", `python_version < "3.8"`, false},
	} {
		r, ok := ParseRequirement(c.in)
		if !ok || r.Name != c.name || r.Marker != c.marker || r.Extra() != c.extra {
			t.Errorf("ParseRequirement(%q) = %+v, %v (extra %v)", c.in, r, ok, r.Extra())
		}
	}
	if got := Normalize("Zope_Interface..x"); got != "zope-interface-x" {
		t.Errorf("Normalize = %q", got)
	}
}

// fakeSite makes a site directory as Debian and pip leave them:
// Foo_Bar 1.2 with egg-info (a package, an extension module, bytecode to
// leave out, a console script), which requires dep; dep 2.0 installed by
// pip with dist-info and a RECORD; and an egg-info of broken, which
// requires a package that is not installed.
func fakeSite(t *testing.T) *Python {
	t.Helper()
	site := t.TempDir()
	files := map[string]string{
		"Foo_Bar-1.2.egg-info/PKG-INFO":           "Metadata-Version: 2.1\nName: Foo-Bar\nVersion: 1.2\nSummary: foo\nProvides-Extra: x\n\nA long description.\n",
		"Foo_Bar-1.2.egg-info/requires.txt":       "dep>=1\n\n[:python_version < \"3.0\"]\nancient\n\n[x]\nextra-thing\n",
		"Foo_Bar-1.2.egg-info/top_level.txt":      "foo_bar\nfoo_ext\n",
		"Foo_Bar-1.2.egg-info/entry_points.txt":   "[console_scripts]\nfoo = foo_bar:main\n",
		"Foo_Bar-1.2.egg-info/SOURCES.txt":        "setup.py\n",
		"foo_bar/__init__.py":                     "from foo_bar.sub import VALUE\ndef main():\n    print('foo', VALUE)\n",
		"foo_bar/sub.py":                          "import dep\nVALUE = dep.VALUE\n",
		"foo_bar/__pycache__/sub.cpython-311.pyc": "bytecode",
		"foo_ext.abi3.so":                         "not really an ELF file",
		"dep-2.0.dist-info/METADATA":              "Metadata-Version: 2.1\nName: dep\nVersion: 2.0\n",
		"dep-2.0.dist-info/WHEEL":                 "Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n",
		"dep-2.0.dist-info/INSTALLER":             "pip\n",
		"dep-2.0.dist-info/LICENSE":               "MIT\n",
		"dep-2.0.dist-info/RECORD":                "dep.py,sha256=x,12\ndep-2.0.dist-info/METADATA,,\n../../../bin/dep-tool,,\n__pycache__/dep.cpython-311.pyc,,\n",
		"dep.py":                                  "VALUE = 42\n",
		"broken-0.1.egg-info/PKG-INFO":            "Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n",
		"broken-0.1.egg-info/requires.txt":        "missing-piece\n",
		"broken.py":                               "",
	}
	for name, body := range files {
		p := filepath.Join(site, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Python{Path: "python3", Sites: []string{site}, tag: "cp311", platform: "linux_x86_64", debian: map[string][]string{}}
}

func TestWheelsOfInstalledDistributions(t *testing.T) {
	py := fakeSite(t)
	dir := t.TempDir()
	paths, err := py.Wheels(dir, "foo.bar")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range paths {
		got = append(got, filepath.Base(p))
	}
	if want := []string{"Foo_Bar-1.2-cp311-abi3-linux_x86_64.whl", "dep-2.0-py2.py3-none-any.whl"}; !slices.Equal(got, want) {
		t.Fatalf("Wheels wrote %v, want %v", got, want)
	}
	foo := members(t, paths[0])
	if want := []string{
		"Foo_Bar-1.2.dist-info/METADATA", "Foo_Bar-1.2.dist-info/RECORD", "Foo_Bar-1.2.dist-info/WHEEL",
		"Foo_Bar-1.2.dist-info/entry_points.txt", "Foo_Bar-1.2.dist-info/top_level.txt",
		"foo_bar/__init__.py", "foo_bar/sub.py", "foo_ext.abi3.so",
	}; !slices.Equal(names(foo), want) {
		t.Errorf("Foo_Bar members %v, want %v", names(foo), want)
	}
	meta := foo["Foo_Bar-1.2.dist-info/METADATA"]
	for _, want := range []string{"Requires-Dist: dep>=1\n", "Requires-Dist: ancient; python_version < \"3.0\"\n", "Requires-Dist: extra-thing; extra == \"x\"\n", "\n\nA long description.\n"} {
		if !strings.Contains(meta, want) {
			t.Errorf("METADATA lacks %q:\n%s", want, meta)
		}
	}
	if w := foo["Foo_Bar-1.2.dist-info/WHEEL"]; !strings.Contains(w, "Root-Is-Purelib: false\nTag: cp311-abi3-linux_x86_64\n") {
		t.Errorf("WHEEL:\n%s", w)
	}
	dep := members(t, paths[1])
	if want := []string{"dep-2.0.dist-info/LICENSE", "dep-2.0.dist-info/METADATA", "dep-2.0.dist-info/RECORD", "dep-2.0.dist-info/WHEEL", "dep.py"}; !slices.Equal(names(dep), want) {
		t.Errorf("dep members %v, want %v", names(dep), want)
	}

	var ni *NotInstalledError
	if _, err := py.Wheels(dir, "broken"); !errors.As(err, &ni) || err.Error() != "missing-piece, which broken requires, is not installed for python3 (Debian: apt-get install python3-missing-piece)" {
		t.Errorf("Wheels(broken): %v", err)
	}
	if _, err := py.Wheels(dir, "Tornado"); !errors.As(err, &ni) || err.Error() != "Tornado is not installed for python3 (Debian: apt-get install python3-tornado)" {
		t.Errorf("Wheels(Tornado): %v", err)
	}
}

// pip makes a virtualenv without pip and returns it with a command that
// runs python's own pip for it; it skips (fails under CI) without
// python3-venv or python3-pip.
func pip(t *testing.T, python string) (venv string, cmd func(args ...string) *exec.Cmd) {
	t.Helper()
	venv = filepath.Join(t.TempDir(), "v")
	if out, err := exec.Command(python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		fleettest.Unavailable(t, python+" -m venv: "+strings.TrimSpace(string(out))+" (Debian package python3-venv)")
	}
	if exec.Command(python, "-m", "pip", "--version").Run() != nil {
		fleettest.Unavailable(t, python+" has no pip (Debian package python3-pip)")
	}
	return venv, func(args ...string) *exec.Cmd {
		return exec.Command(python, append([]string{"-m", "pip", "--python", filepath.Join(venv, "bin", "python"), "--disable-pip-version-check"}, args...)...)
	}
}

// TestPipInstallsTheWheels installs the wheels of the fake site with pip,
// offline, and runs the console script of one of them.
func TestPipInstallsTheWheels(t *testing.T) {
	python := fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	real, err := LocalPython(python)
	if err != nil {
		t.Fatal(err)
	}
	py := fakeSite(t)
	py.Path, py.tag, py.platform = real.Path, real.tag, real.platform
	os.Remove(filepath.Join(py.Sites[0], "foo_ext.abi3.so"))
	dir := t.TempDir()
	if _, err := py.Wheels(dir, "foo-bar"); err != nil {
		t.Fatal(err)
	}
	v, pipCmd := pip(t, python)
	if out, err := pipCmd("install", "-q", "--no-index", "--find-links", dir, "foo-bar==1.2").CombinedOutput(); err != nil {
		t.Fatalf("pip install: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(v, "bin", "foo")).CombinedOutput(); err != nil || string(out) != "foo 42\n" {
		t.Errorf("the console script foo: %v: %q", err, out)
	}
}

// TestDebianDjangoResolvesOffline packs Debian's python3-django with what
// it needs, and checks that pip resolves the example's Django>=3.2,<5
// from them alone.
func TestDebianDjangoResolvesOffline(t *testing.T) {
	python := fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	py, err := LocalPython(python)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := py.Wheels(dir, "Django")
	var ni *NotInstalledError
	if errors.As(err, &ni) {
		fleettest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(paths[0]), "Django-3.") && !strings.HasPrefix(filepath.Base(paths[0]), "Django-4.") {
		t.Errorf("the Django wheel is %s", paths[0])
	}
	_, pipCmd := pip(t, python)
	out, err := pipCmd("install", "--dry-run", "--no-index", "--find-links", dir, "Django>=3.2,<5").CombinedOutput()
	if err != nil {
		t.Fatalf("pip install --dry-run: %v\n%s", err, out)
	}
	for _, want := range []string{"Would install", "Django-", "asgiref-", "sqlparse-"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pip install --dry-run Django>=3.2,<5 lacks %q:\n%s", want, out)
		}
	}
}
