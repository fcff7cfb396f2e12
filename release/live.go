package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/magefab/magefab/sshx"
)

// The operations here work on the live release: the dir current points to.

// liveScript enters the live release dir, or fails saying nothing is
// deployed.
func liveScript(o *Options) string {
	return `live=$(readlink "$root/"` + sshx.Quote(o.Layout.Current) + ` 2>/dev/null) || die "nothing is deployed: $root/` + o.Layout.Current + ` does not exist"
live=${live##*/}
cd "$root/$live" || die "cannot enter the live release $root/$live"
`
}

// restartScript runs the restart command, with sudo -n unless told not to,
// from the login directory as a deploy's switch does, so that relative
// paths in it mean the same thing everywhere.
func restartScript(o *Options) string {
	if o.Restart == "" {
		return "step \"no restart command configured\"\n"
	}
	sudo := o.sudo()
	return `step "restarting"
(cd "$HOME" 2>/dev/null || cd /; ` + sudo + `/bin/sh -c ` + sshx.Quote(o.Restart) + `) 2>&1 || die "the restart command failed"
`
}

// Restart restarts the app on h (one session).
func Restart(ctx context.Context, h sshx.Host, o *Options) error {
	out, err := run(ctx, h, o, prelude(o.Layout)+restartScript(o), false)
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
// left as it is. That is not an error: the host is restarted anyway and
// the returned warning names the host and the path.
func Maintenance(ctx context.Context, h sshx.Host, o *Options, settings string, on bool) (warning string, err error) {
	if err := ValidateRelPath("Settings", settings); err != nil {
		return "", err
	}
	value := "False"
	if on {
		value = "True"
	}
	const (
		assign  = `^MAINTENANCE_MODE[[:space:]]*=`
		literal = `(True|False|1|0)([[:space:]]*(#.*)?)$`
	)
	script := prelude(o.Layout) + liveScript(o) + `f=` + sshx.Quote(settings) + `
if [ ! -f "$f" ]; then
  printf 'magefab:warn\t%s\n' "$PWD/$f does not exist"
elif ! grep -Eq ` + sshx.Quote(assign) + ` "$f"; then
  printf 'magefab:warn\t%s\n' "$PWD/$f has no MAINTENANCE_MODE assignment"
elif other=$(grep -E ` + sshx.Quote(assign) + ` "$f" | grep -Ev ` + sshx.Quote(assign+`[[:space:]]*`+literal) + ` | head -n 1 | head -c 200 | tr '\t\r' '  '); [ -n "$other" ]; then
  printf 'magefab:warn\t%s\n' "$PWD/$f sets MAINTENANCE_MODE to something other than True or False ($other): left unchanged; set it there by hand"
else
  sed -E -i ` + sshx.Quote(`s/(`+assign+`[[:space:]]*)`+literal+`/\1`+value+`\3/`) + ` "$f" || die "cannot edit $PWD/$f"
  step "MAINTENANCE_MODE = ` + value + ` in $live/$f"
fi
` + restartScript(o)
	out, err := run(ctx, h, o, script, false)
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
	var b strings.Builder
	b.WriteString(prelude(o.Layout) + `cd "$root/"` + sshx.Quote(dir) + ` || die "cannot enter $root/` + sshx.Embed(dir) + `"
[ -f manage.py ] || die "manage.py is missing from release ` + sshx.Embed(dir) + `"
py="$root/"` + sshx.Quote(dir) + `/` + sshx.Quote(o.Layout.Virtualenv) + `/bin/python
`)
	for _, c := range commands {
		b.WriteString(`step "manage.py ` + sshx.Embed(strings.Join(c, " ")) + `"
"$py" manage.py ` + sshx.Join(c...) + ` 2>&1 || die "manage.py ` + sshx.Embed(c[0]) + ` failed"
`)
	}
	out, err := run(ctx, h, o, b.String(), false)
	if err != nil {
		return scriptError(h, "manage.py", out, err, o)
	}
	return nil
}

// SetupVirtualenv makes the virtualenv venv (an absolute path) and installs
// the requirement files, relative to dir, unless their stamp matches, as
// Prepare does for a release; it is for a project's own virtualenv
// (pip:setup). It reports whether it installed.
func SetupVirtualenv(ctx context.Context, h sshx.Host, o *Options, dir, venv string) (installed bool, err error) {
	script := prelude(o.Layout) + `cd ` + sshx.Quote(dir) + ` || die "cannot enter ` + sshx.Embed(dir) + `"
` + venvScript(o, sshx.Quote(venv)) + `res "installed	$installed"
`
	out, err := run(ctx, h, o, script, false)
	if err != nil {
		return false, scriptError(h, "virtualenv", out, err, o)
	}
	f := out.result("installed")
	return len(f) > 0 && f[0] == "1", nil
}
