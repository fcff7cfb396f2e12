package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/wheel"
)

//go:embed templates
var templates embed.FS

// release is one tagged commit of the app.
type release struct {
	Tag, SHA string
}

// workspace is what every tool deploys: the app's repository (with the
// magefile that magefab runs from), its bare remote and wheelhouse under
// /srv, the mage binary, and the directories the peers run in.
type workspace struct {
	id       string
	tmp      string // local scratch, removed at the end
	srv      string // /srv/magefab-bench-<id>: remote and wheelhouse, removed at the end
	remote   string // bare repository the hosts clone from
	wheels   string // the wheelhouse
	app      string // the app's work tree: the magefab project
	src      string // the magefab source the magefiles build with
	mage     string // the mage binary
	ssh      string // the fleet's ssh_config
	gitEnv   []string
	releases []release // v0.1.0, v0.2.0, v0.3.0
	initDone []string  // init scripts written, removed at the end
}

func randomID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func render(name string, data any) (string, error) {
	src, err := templates.ReadFile("templates/" + name)
	if err != nil {
		return "", err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

func writeFiles(dir string, files map[string]string) error {
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// newWorkspace builds the app repository, with the magefile magefab runs
// from, in three tagged releases that differ only in a CHANGES file (the
// requirements never change), pushes them to a bare remote the deploy
// user owns, builds the wheelhouse and the mage binary.
//
// The magefiles build with the magefab source in root, or, when rev is
// set, with that commit of it exported by git archive.
func newWorkspace(ctx context.Context, root, rev, id, magefabUnit, sshConfig string) (*workspace, error) {
	w := &workspace{id: id, ssh: sshConfig}
	var err error
	if w.tmp, err = os.MkdirTemp("", "magefab-bench-"); err != nil {
		return nil, err
	}
	w.srv = "/srv/magefab-bench-" + w.id
	w.remote = filepath.Join(w.srv, "app.git")
	w.wheels = filepath.Join(w.srv, "wheels")
	w.app = filepath.Join(w.tmp, "app")
	ok := false
	defer func() {
		if !ok {
			w.cleanup()
		}
	}()
	gitConfig := filepath.Join(w.tmp, "gitconfig")
	if err := os.WriteFile(gitConfig, []byte("[safe]\n\tdirectory = *\n[user]\n\tname = Bench Marker\n\temail = bench@example.com\n[init]\n\tdefaultBranch = master\n"), 0o644); err != nil {
		return nil, err
	}
	w.gitEnv = []string{"GIT_CONFIG_GLOBAL=" + gitConfig, "GIT_CONFIG_NOSYSTEM=1"}

	if err := os.MkdirAll(w.wheels, 0o755); err != nil {
		return nil, err
	}
	if _, err := wheel.Build(w.wheels, "magefab-testdep", "1.0", "NAME = 'magefab-testdep'\n"); err != nil {
		return nil, err
	}

	w.src = root
	if rev != "" {
		w.src = filepath.Join(w.tmp, "magefab")
		if err := os.MkdirAll(w.src, 0o755); err != nil {
			return nil, err
		}
		export := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, rev, w.src)
		if out, err := export.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("exporting magefab %s: %v\n%s", rev, err, out)
		}
	}

	w.mage = filepath.Join(w.tmp, "bin", "mage")
	build := exec.CommandContext(ctx, "go", "build", "-o", w.mage, "github.com/magefile/mage")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building mage: %v\n%s", err, out)
	}

	sum, err := os.ReadFile(filepath.Join(w.src, "go.sum"))
	if err != nil {
		return nil, err
	}
	if err := writeFiles(w.app, map[string]string{
		"app.py":           e2e.AppPy,
		slotAppFile:        slotAppPy,
		"requirements.txt": "magefab-testdep==1.0\n",
		".gitignore":       "/env/\n*.pyc\n",
		"go.mod":           goMod("bench"+w.id, w.src),
		"magefile.go":      e2eMagefile(w, magefabUnit, ""),
		"go.sum":           string(sum),
	}); err != nil {
		return nil, err
	}
	if err := w.git(ctx, "", "init", "-q", "--bare", w.remote); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "chown", "-R", "deploy:deploy", w.srv).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("chown %s: %v: %s", w.srv, err, out)
	}
	for _, args := range [][]string{{"init", "-q"}, {"remote", "add", "origin", w.remote}} {
		if err := w.git(ctx, w.app, args...); err != nil {
			return nil, err
		}
	}
	for i, tag := range []string{"v0.1.0", "v0.2.0", "v0.3.0"} {
		if err := os.WriteFile(filepath.Join(w.app, "CHANGES"), []byte(strings.Repeat("a change\n", i+1)), 0o644); err != nil {
			return nil, err
		}
		for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "release " + tag}, {"tag", "-a", "-m", tag, tag}} {
			if err := w.git(ctx, w.app, args...); err != nil {
				return nil, err
			}
		}
		sha, err := w.gitOut(ctx, w.app, "rev-parse", "HEAD")
		if err != nil {
			return nil, err
		}
		w.releases = append(w.releases, release{Tag: tag, SHA: sha})
	}
	if err := w.git(ctx, w.app, "push", "-q", "--follow-tags", "-u", "origin", "master"); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "chown", "-R", "deploy:deploy", w.remote).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("chown %s: %v: %s", w.remote, err, out)
	}
	ok = true
	return w, nil
}

// e2eMagefile is the e2e tests' magefile for unit, deploying the
// workspace's app to the fleet, with extra Config fields.
func e2eMagefile(w *workspace, unit, extra string) string {
	return e2e.Magefile(unit, w.remote, w.wheels, w.ssh, []string{"web1"}, "", extra)
}

func goMod(name, root string) string {
	return fmt.Sprintf("module example.com/%s\n\ngo 1.26\n\nrequire github.com/magefab/magefab v0.0.0\n\nreplace github.com/magefab/magefab => %s\n", name, root)
}

func (w *workspace) git(ctx context.Context, dir string, args ...string) error {
	_, err := w.gitOut(ctx, dir, args...)
	return err
}

func (w *workspace) gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), w.gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// writeInit writes /etc/init.d/<unit> for the app of one tool: it runs
// the app from current (the live release dir) on port.
func (w *workspace) writeInit(unit string, port int, current string) error {
	return w.writeInitStart(unit, port, current, e2e.AppStart)
}

// writeInitStart is writeInit with the shell command that starts the app.
func (w *workspace) writeInitStart(unit string, port int, current, start string) error {
	p := filepath.Join("/etc/init.d", unit)
	if err := os.WriteFile(p, []byte(e2e.InitScript(unit, port, start, "/version", current)), 0o755); err != nil {
		return err
	}
	w.initDone = append(w.initDone, p)
	return nil
}

// writeSlotInit writes /etc/init.d/<unit>-slot, the slot init script of a
// slot tool, and /etc/init.d/<unit>, which stops every slot of the unit.
func (w *workspace) writeSlotInit(unit string, port int) error {
	for p, body := range map[string]string{
		filepath.Join("/etc/init.d", unit+"-slot"): slotInitScript(unit, port),
		filepath.Join("/etc/init.d", unit):         slotUnitScript(unit),
	} {
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return err
		}
		w.initDone = append(w.initDone, p)
	}
	return nil
}

// cleanup removes what newWorkspace and writeInit made on this machine.
func (w *workspace) cleanup() {
	for _, p := range w.initDone {
		os.Remove(p)
	}
	w.initDone = nil
	if w.srv != "" {
		os.RemoveAll(w.srv)
	}
	if w.tmp != "" {
		os.RemoveAll(w.tmp)
	}
}
