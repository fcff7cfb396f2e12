package release_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// nastyInputs seed the fuzz targets: values that would run a command if a
// shell read them unquoted, git options, path escapes, and values that
// are not names at all.
var nastyInputs = []string{
	"v1.2.3", "release/v1.2+build.5", "6b4943c", strings.Repeat("f", 40), "requirements/common.txt", "./-odd",
	"dir with space/x.txt", "five", "my-app_2.web", "origin/master",
	"v1;touch /tmp/magefab-pwned", "$(touch /tmp/magefab-pwned)", "v1$(touch${IFS}/tmp/magefab-pwned)",
	"`id`", "v1|id", "v1&&id", "v1'id'", `v1"id"`, "v1\nid", "v1\rid", "../../etc/passwd", "a/../../x",
	"--upload-pack=touch /tmp/magefab-pwned", "-v1", "", "\x00", "v1\x00id", "v1\xff\xfe", "é",
	"v1\u00a0", "v1%s%n", `v1\x`, "v1.lock", "v1@{0}", "HEAD", "~root", "*", "!x", "a:b",
	strings.Repeat("v", 300),
}

// checkRefused checks the error of a refused value: an *InputError for
// field, whose message shows the value quoted and cut short.
func checkRefused(t *testing.T, err error, field string) {
	t.Helper()
	var ie *release.InputError
	if !errors.As(err, &ie) || ie.Field != field || ie.Reason == "" {
		t.Fatalf("error = %v (%T), want an *InputError for %s", err, err, field)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
		t.Fatalf("error %q holds raw control characters or invalid UTF-8", msg)
	}
	if len(msg) > 800 {
		t.Fatalf("error is %d bytes long", len(msg))
	}
}

// wantPlain checks that v needs no quoting in a shell and is no option.
func wantPlain(t *testing.T, what, v string) {
	t.Helper()
	if sshx.Quote(v) != v {
		t.Fatalf("%s %q was accepted, but a shell would interpret it (quoted: %s)", what, v, sshx.Quote(v))
	}
	if strings.HasPrefix(v, "-") {
		t.Fatalf("%s %q was accepted, but starts with '-'", what, v)
	}
}

// scriptHost is a release root on this machine, run through sshx.Local,
// for checking how values come out of the scripts that release runs on a
// host: releases/a holds manage.py and a stand-in for its virtualenv's
// python that writes its arguments to env/bin/args; current points to a.
type scriptHost struct {
	root string // Path/ReleasesRoot
	host sshx.Host
	out  *bytes.Buffer
	opts *release.Options
}

func newScriptHost(f *testing.F) *scriptHost {
	f.Helper()
	path := f.TempDir()
	s := &scriptHost{root: filepath.Join(path, "releases"), host: sshx.NewLocal("fuzz"), out: new(bytes.Buffer)}
	bin := filepath.Join(path, "bin")
	for name, body := range map[string]string{
		"releases/a/.git/HEAD":      "ref: refs/heads/master\n",
		"releases/a/manage.py":      "",
		"releases/a/env/bin/python": "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"${0%/*}/args\"\n",
		"bin/crontab":               "#!/bin/sh\nexit 0\n",
		"releases/b/.git/HEAD":      "ref: refs/heads/master\n",
	} {
		p := filepath.Join(path, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(s.root, "current")); err != nil {
		f.Fatal(err)
	}
	s.opts = &release.Options{
		Layout:      release.Layout{Path: path, ReleasesRoot: "releases", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: "env"},
		Python:      "/bin/sh",
		PipInstall:  []string{"pip", "install"},
		Env:         []string{"PATH=" + bin + ":/usr/bin:/bin"},
		Owner:       "fuzzer@here",
		RunID:       "fuzz-run",
		CrontabUser: "deploy",
		Console:     sshx.NewConsole(s.out),
	}
	return s
}

// lock makes the release root look locked by this run, as Switch expects.
func (s *scriptHost) lock(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.root, ".lock"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.root, ".lock", "id"), []byte(s.opts.RunID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastLogLine returns the fields of the last line of revisions.log.
func (s *scriptHost) lastLogLine(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.root, "revisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	return strings.Split(lines[len(lines)-1], "\t")
}

// isFile reports whether name, relative to release dir a, is a regular
// file.
func (s *scriptHost) isFile(name string) bool {
	st, err := os.Stat(filepath.Join(s.root, "a", name))
	return err == nil && st.Mode().IsRegular()
}

var tagOfAnyPattern = regexp.MustCompile(``)

// FuzzValidateTag checks that a tag ValidateTag accepts is a tag git
// accepts, needs no quoting, and comes out of the switch script unchanged:
// in its progress line and in revisions.log.
func FuzzValidateTag(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	s := newScriptHost(f)
	f.Fuzz(func(t *testing.T, tag string) {
		err := release.ValidateTag(tag, tagOfAnyPattern)
		if err != nil {
			checkRefused(t, err, "tag")
			return
		}
		wantPlain(t, "tag", tag)
		if len(tag) > release.MaxRefLen || tag == "HEAD" {
			t.Fatalf("tag %q was accepted", tag)
		}
		// git check-ref-format's rules (TestValidateTagAgreesWithGit runs git).
		for _, comp := range strings.Split(tag, "/") {
			if comp == "" || strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
				t.Fatalf("tag %q was accepted, but git refuses its component %q", tag, comp)
			}
		}
		if strings.Contains(tag, "..") || strings.Contains(tag, "@{") || strings.HasSuffix(tag, ".") || tag == "@" {
			t.Fatalf("tag %q was accepted, but git refuses it", tag)
		}
		s.lock(t)
		s.out.Reset()
		target := release.Target{Name: tag, SHA: strings.Repeat("a", 40)}
		if err := release.Switch(context.Background(), &release.Prepared{Host: s.host, Dir: "a", Target: target}, s.opts, "fuzz"); err != nil {
			t.Fatalf("switch to %q: %v", tag, err)
		}
		if want := "current -> a (" + tag + "); restarting\n"; !strings.Contains(s.out.String(), want) {
			t.Fatalf("the switch of %q said\n%s\nwant a line ending in %q", tag, s.out, want)
		}
		if got := s.lastLogLine(t); len(got) != 6 || got[2] != tag || got[3] != target.SHA {
			t.Fatalf("revisions.log after the switch of %q holds %q", tag, got)
		}
	})
}

// FuzzValidateCommit checks that a commit ValidateCommit accepts is 4 to
// 64 hexadecimal digits, which no shell or git reads as anything else.
func FuzzValidateCommit(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rev string) {
		err := release.ValidateCommit(rev)
		if err != nil {
			checkRefused(t, err, "commit")
			return
		}
		if len(rev) < 4 || len(rev) > 64 || strings.Trim(rev, "0123456789abcdefABCDEF") != "" {
			t.Fatalf("commit %q was accepted", rev)
		}
		wantPlain(t, "commit", rev)
	})
}

// FuzzValidateRevision checks that a revision ValidateRevision accepts
// needs no quoting, is no git option and holds none of git's revision
// operators.
func FuzzValidateRevision(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rev string) {
		err := release.ValidateRevision(rev)
		if err != nil {
			checkRefused(t, err, "revision")
			return
		}
		wantPlain(t, "revision", rev)
		if len(rev) > release.MaxRefLen || strings.Contains(rev, "..") || strings.ContainsAny(rev, "@^~:{}") {
			t.Fatalf("revision %q was accepted", rev)
		}
	})
}

// FuzzValidateUnit checks that a Unit ValidateUnit accepts needs no
// quoting, alone or in the name of the celeryd init script: the
// RestartCommand template and the Celeryd path hold it bare.
func FuzzValidateUnit(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, unit string) {
		err := release.ValidateUnit(unit)
		if err != nil {
			checkRefused(t, err, "Unit")
			return
		}
		wantPlain(t, "Unit", unit)
		if strings.HasPrefix(unit, ".") || strings.Contains(unit, "/") || len(unit) > release.MaxUnitLen {
			t.Fatalf("Unit %q was accepted", unit)
		}
		wantPlain(t, "init script", "/etc/init.d/celeryd-"+unit+"_PRODUCTION")
	})
}

// FuzzValidateRelPath checks that a file name ValidateRelPath accepts
// stays in the release dir, is no option, and comes out of every script
// that takes one unchanged: the crontab of a switch, manage.py's fixtures,
// the maintenance settings file, and the requirement files of a
// virtualenv.
func FuzzValidateRelPath(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	s := newScriptHost(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, p string) {
		err := release.ValidateRelPath("file", p)
		if err != nil {
			checkRefused(t, err, "file")
			return
		}
		if p == "" || len(p) > release.MaxRelPathLen || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "-") ||
			!utf8.ValidString(p) || strings.ContainsFunc(p, unicode.IsControl) {
			t.Fatalf("file %q was accepted", p)
		}
		for _, elem := range strings.Split(p, "/") {
			if elem == ".." {
				t.Fatalf("file %q was accepted, but leaves the release dir", p)
			}
		}
		// Inside double quotes, every character of it is literal.
		if strings.ContainsAny(p, "$`\"\\") {
			t.Fatalf("file %q was accepted, but a shell interprets it inside double quotes", p)
		}

		if err := release.Manage(ctx, s.host, s.opts, "a", [][]string{{"loaddata", p}}); err != nil {
			t.Fatalf("manage.py loaddata %q: %v", p, err)
		}
		args, _ := os.ReadFile(filepath.Join(s.root, "a", "env", "bin", "args"))
		if want := "manage.py\x00loaddata\x00" + p + "\x00"; string(args) != want {
			t.Fatalf("manage.py loaddata %q ran with the arguments %q, want %q", p, args, want)
		}
		if s.isFile(p) {
			return // the remaining scripts act on a file that is missing
		}

		o := *s.opts
		o.Crontab = p
		s.lock(t)
		err = release.Switch(ctx, &release.Prepared{Host: s.host, Dir: "a", Target: release.Target{Name: "v1", SHA: "abcd"}}, &o, "fuzz")
		if want := "crontab file " + p + " is missing from release a"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("switch with the missing crontab %q: %v, want an error saying %q", p, err, want)
		}

		warning, err := release.Maintenance(ctx, s.host, s.opts, p, true)
		if want := "/releases/a/" + p + " does not exist"; err != nil || !strings.HasSuffix(warning, want) {
			t.Fatalf("maintenance with the missing settings file %q: %q, %v, want a warning ending in %q", p, warning, err, want)
		}

		o = *s.opts
		o.Requirements = []string{p}
		_, err = release.SetupVirtualenv(ctx, s.host, &o, filepath.Join(s.root, "a"), filepath.Join(s.root, "a", "env"))
		if want := "requirements file " + p + " is missing from "; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("virtualenv with the missing requirements file %q: %v, want an error saying %q", p, err, want)
		}
	})
}

// FuzzValidateName checks that a layout name ValidateName accepts needs
// no quoting, is one path element that is neither "." nor "..", and holds
// none of the ':' and '%' the hosts' scripts use as separators.
func FuzzValidateName(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := release.ValidateName("ReleasesRoot", name)
		if err != nil {
			checkRefused(t, err, "ReleasesRoot")
			return
		}
		wantPlain(t, "name", name)
		if name == "" || len(name) > release.MaxNameLen || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/:%") {
			t.Fatalf("name %q was accepted", name)
		}
	})
}

// FuzzValidateDeployPath checks that a deploy root ValidateDeployPath
// accepts needs no quoting, is no option, is not "/" and never climbs out
// with "..".
func FuzzValidateDeployPath(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := release.ValidateDeployPath(p)
		if err != nil {
			checkRefused(t, err, "Path")
			return
		}
		wantPlain(t, "Path", p)
		if len(p) > release.MaxPathLen || filepath.Clean(p) == "/" || strings.HasPrefix(p, "~") {
			t.Fatalf("Path %q was accepted", p)
		}
		for _, elem := range strings.Split(p, "/") {
			if elem == ".." {
				t.Fatalf("Path %q was accepted, but has a \"..\" element", p)
			}
		}
	})
}

// FuzzValidateRefName checks that a ref name ValidateRefName accepts is
// one that git check-ref-format accepts too (TestValidateTagAgreesWithGit
// runs git), and no option.
func FuzzValidateRefName(f *testing.F) {
	for _, s := range nastyInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		err := release.ValidateRefName("git ref", ref)
		if err != nil {
			checkRefused(t, err, "git ref")
			return
		}
		if ref == "" || len(ref) > release.MaxRefLen || strings.HasPrefix(ref, "-") || !utf8.ValidString(ref) ||
			strings.ContainsFunc(ref, unicode.IsSpace) || strings.ContainsFunc(ref, unicode.IsControl) ||
			strings.ContainsAny(ref, "~^:?*[\\") || strings.Contains(ref, "..") || strings.Contains(ref, "@{") ||
			strings.HasSuffix(ref, ".") || ref == "@" {
			t.Fatalf("ref %q was accepted", ref)
		}
		for _, comp := range strings.Split(ref, "/") {
			if comp == "" || strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
				t.Fatalf("ref %q was accepted, but git refuses its component %q", ref, comp)
			}
		}
	})
}
