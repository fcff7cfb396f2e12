package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/magefab/magefab/sshx"
)

// The operations here work on the live release: the dir current points to.

// livePart gives the inputs of enter_live and restart_app
// (hostsh/live.sh), with live.sh.
func livePart(o *Options) part {
	var in vars
	restart := o.Restart
	if o.Slots != nil {
		restart = "" // a slot takes the place of the one serving
	}
	in.set("MF_RESTART", restart)
	return part{files: []string{"slot", "live"}, in: in}
}

// Restart restarts the app on h (one session). With slots, a new slot of
// the live release starts beside the one serving, takes its place once it
// answers, and the other drains.
func Restart(ctx context.Context, h sshx.Host, o *Options) error {
	out, err := phase(livePart(o), part{files: []string{"restart"}}).run(ctx, h, o, false)
	if err != nil {
		return scriptError(h, "restart", out, err, o)
	}
	return nil
}

// Maintenance sets MAINTENANCE_MODE = True or False in the live release's
// settings file, then restarts, in one session. Only an assignment at the
// start of a line whose value is a literal (True, False, 1 or 0, a comment
// may follow) changes; a file, missing, without such an assignment, or
// with one whose value is anything else (os.environ.get(...), a name) is
// left as it is, and the app is not restarted: the returned warning names
// the host and the path (the caller decides whether that fails).
func Maintenance(ctx context.Context, h sshx.Host, o *Options, settings string, on bool) (warning string, err error) {
	if err := ValidateRelPath("Settings", settings); err != nil {
		return "", err
	}
	value := "False"
	if on {
		value = "True"
	}
	var in vars
	in.set("MF_SETTINGS", settings)
	in.set("MF_MAINTENANCE", value)
	out, err := phase(livePart(o), part{files: []string{"maintenance"}, in: in}).run(ctx, h, o, false)
	if err != nil {
		return "", scriptError(h, "maintenance", out, err, o)
	}
	if w := out.result("warn"); len(w) > 0 {
		return fmt.Sprintf("%s: %s", h.Name(), strings.Join(w, " ")), nil
	}
	return "", nil
}

// Manage runs Django's manage.py commands, in order, in a release dir with
// its virtualenv's python and the run's environment (DEPLOYMENT_TYPE), in
// one session: e.g. [["migrate", "--noinput"], ["loaddata", "initial"]].
func Manage(ctx context.Context, h sshx.Host, o *Options, dir string, commands [][]string) error {
	lines := make([]string, len(commands))
	for i, c := range commands {
		lines[i] = strings.Join(c, "\t")
	}
	var in vars
	in.set("MF_DIR", dir)
	in.list("MF_MANAGE", lines)
	out, err := (part{files: []string{"manage"}, in: in}).run(ctx, h, o, false)
	if err != nil {
		return scriptError(h, "manage.py", out, err, o)
	}
	return nil
}

// SetupVirtualenv makes the virtualenv venv (an absolute path) and installs
// the requirement files, relative to dir, unless their stamp matches, as
// a deploy does for a release; it is for a project's own virtualenv
// (pip:setup). It reports whether it installed.
func SetupVirtualenv(ctx context.Context, h sshx.Host, o *Options, dir, venv string) (installed bool, err error) {
	var in vars
	in.set("MF_PROJECT_DIR", dir)
	in.set("MF_VENV_PATH", venv)
	out, err := phase(venvPart(o), part{files: []string{"virtualenv"}, in: in}).run(ctx, h, o, false)
	if err != nil {
		return false, scriptError(h, "virtualenv", out, err, o)
	}
	f := out.result("installed")
	return len(f) > 0 && f[0] == "1", nil
}
