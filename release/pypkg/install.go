package pypkg

import (
	"archive/tar"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/magefab/magefab/internal/shtext"
	"github.com/magefab/magefab/sshx"
)

// Install pip-installs archives (local paths of sdists or wheels, as Fetch
// returns them) into the virtualenv venv on h (a relative path is relative
// to the login directory), in one session: the
// archives are streamed as one tar into a temporary directory beside the
// virtualenv, installed with one pip command and removed again, whatever
// the outcome.
//
// pipInstall is the install command as words, e.g. ["pip", "install",
// "--no-index", "--no-build-isolation"]; nil means ["pip", "install"].
// When its first word is "pip", the virtualenv's own pip runs it, or when
// the virtualenv has none, the host's python3 -m pip --python
// <venv>/bin/python (pip >= 22.3). Any other command runs as it is, with
// VIRTUAL_ENV set and the virtualenv first on PATH. An sdist is built on
// the host: without access to an index, pass --no-build-isolation and
// have setuptools in the virtualenv.
//
// No archives means nothing to do. The command's output is discarded; a
// failure's error holds the end of it.
func Install(ctx context.Context, h sshx.Host, venv string, archives []string, pipInstall []string) error {
	if len(archives) == 0 {
		return nil
	}
	if reason := checkRemotePath(venv); reason != "" {
		return fmt.Errorf("pypkg: %s: virtualenv %q %s", h.Name(), venv, reason)
	}
	venv = path.Clean(venv)
	if venv == "/" || venv == "." {
		return fmt.Errorf("pypkg: %s: virtualenv %q is not a virtualenv directory", h.Name(), venv)
	}
	entries := make([]string, len(archives))
	for i, a := range archives {
		st, err := os.Stat(a)
		if err != nil {
			return fmt.Errorf("pypkg: %w", err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("pypkg: archive %s is not a regular file", a)
		}
		// One directory per archive: two archives may share a file
		// name, and a wheel must keep its own.
		entries[i] = strconv.Itoa(i+1) + "/" + filepath.Base(a)
	}
	if len(pipInstall) == 0 {
		pipInstall = []string{"pip", "install"}
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeBundle(pw, archives, entries)
		pw.CloseWithError(err)
		done <- err
	}()
	cmd := h.Script(ctx, hostFile("install"))
	cmd.Env = []string{"MF_VENV=" + venv, "MF_TMP_DIR=" + path.Dir(venv),
		"MF_ARCHIVES=" + strings.Join(entries, "\n"), "MF_PIP=" + strings.Join(pipInstall, "\n")}
	cmd.Stdin = pr
	runErr := cmd.Run()
	pr.CloseWithError(errCommandEnded)
	bundleErr := <-done
	if errors.Is(bundleErr, errCommandEnded) {
		bundleErr = nil // the command stopped reading: runErr says why
	}
	names := make([]string, len(archives))
	for i, a := range archives {
		names[i] = filepath.Base(a)
	}
	what := strings.Join(names, ", ")
	if bundleErr != nil {
		return fmt.Errorf("pypkg: %s: sending %s: %w", h.Name(), what, bundleErr)
	}
	if runErr != nil {
		return commandError(fmt.Sprintf("pypkg: %s: installing %s into %s", h.Name(), what, venv), runErr)
	}
	return nil
}

// errCommandEnded stops the writer of the archives when the install
// command ends before reading them all.
var errCommandEnded = errors.New("pypkg: install command ended")

// The scripts Install and RunInstallScripts run on a host live in
// hostsh/, each with a header that names its inputs; their text is
// constant, and every input reaches them as an environment variable, set
// through sshx.Cmd.Env, which quotes every value.
//
//go:embed hostsh/*.sh
var hostFS embed.FS

// hostFile returns the text of hostsh/<name>.sh as a host is sent it:
// without its comment-only and blank lines (see shtext.Strip).
func hostFile(name string) string {
	text, err := hostFS.ReadFile("hostsh/" + name + ".sh")
	if err != nil {
		panic("pypkg: no host script " + name)
	}
	return shtext.Strip(string(text))
}

// writeBundle writes an uncompressed tar holding each archive under its
// entry name.
func writeBundle(w io.Writer, archives, entries []string) error {
	tw := tar.NewWriter(w)
	for i, a := range archives {
		if err := addBundleFile(tw, a, entries[i]); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addBundleFile(tw *tar.Writer, src, name string) error {
	fh, err := os.Open(src)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: 0o644, ModTime: st.ModTime()}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, fh, st.Size())
	return err
}

// commandError describes a failed script by what it was doing and the end
// of its output (the script itself says nothing useful), keeping err for
// errors.As.
func commandError(what string, err error) error {
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("%s: %w", what, err)
	}
	how := fmt.Sprintf("exited with status %d", ee.Status)
	if ee.Signal != "" {
		how = "was killed by signal " + ee.Signal
	}
	msg := what + ": " + how
	lines := strings.Split(strings.TrimSpace(string(ee.Stderr)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) == 1 && lines[0] != "" {
		msg += ": " + lines[0]
	} else if len(lines) > 1 {
		msg += ":\n\t" + strings.Join(lines, "\n\t")
	}
	return &explained{msg, err}
}

// explained is an error whose message replaces that of the error it
// wraps.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// RunInstallScripts runs each script (a path relative to dir, e.g. in the
// release's repository) in dir on h, one after the other in one session,
// with venv as its first argument, VIRTUAL_ENV set and the virtualenv
// first on PATH. A script must be executable; the first that fails stops
// the rest and is named in the error.
func RunInstallScripts(ctx context.Context, h sshx.Host, dir string, scripts []string, venv string) error {
	if len(scripts) == 0 {
		return nil
	}
	if reason := checkRemotePath(dir); reason != "" {
		return fmt.Errorf("pypkg: %s: directory %q %s", h.Name(), dir, reason)
	}
	if reason := checkRemotePath(venv); reason != "" {
		return fmt.Errorf("pypkg: %s: virtualenv %q %s", h.Name(), venv, reason)
	}
	var list []string
	for _, s := range scripts {
		if reason := checkScriptPath(s); reason != "" {
			return fmt.Errorf("pypkg: install script %q %s", s, reason)
		}
		list = append(list, s, "./"+path.Clean(s))
	}
	cmd := h.Script(ctx, hostFile("run_scripts"))
	cmd.Env = []string{"MF_VENV=" + venv, "MF_DIR=" + dir, "MF_SCRIPTS=" + strings.Join(list, "\n")}
	if err := cmd.Run(); err != nil {
		return commandError(fmt.Sprintf("pypkg: %s: install scripts in %s", h.Name(), dir), err)
	}
	return nil
}

// checkRemotePath returns what is wrong with a directory path on a host,
// or "".
func checkRemotePath(p string) string {
	switch {
	case p == "":
		return "is empty"
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "contains a control character"
	case strings.HasPrefix(p, "-"):
		return "starts with '-'"
	}
	return ""
}

// checkScriptPath returns what is wrong with an install script's path, or
// "".
func checkScriptPath(p string) string {
	switch {
	case p == "":
		return "is empty"
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "contains a control character"
	case strings.HasPrefix(p, "/"):
		return "is an absolute path; give a path relative to the repository root"
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return `has a ".." element, which leaves the repository`
		}
	}
	return ""
}
