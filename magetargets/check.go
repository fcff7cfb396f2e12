package magetargets

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/magefab/magefab/internal/tty"
	"github.com/magefab/magefab/release"
)

// Check checks on every host what a deploy and a rollback need there (sudo -n, the deploy root, the git server's host key, python, the restart command, the crontab file, the lock), changing nothing, and says what to fix.
func (Deploy) Check(ctx context.Context) (err error) {
	r, ctx, err := newFleetRun(ctx, true)
	if err != nil {
		return err
	}
	defer r.end(&err)
	if err := r.wireHooks(ctx, &release.Target{}, false); err != nil {
		return err
	}
	r.say("checking %s, changing nothing: %s", r.env.DeploymentType, r.hostNames())
	res := r.fleet.Check(ctx)
	var failed []string
	for _, hc := range res {
		printHostCheck(stdout, hc, r.env.Name, r.mage)
		if hc.Failed() {
			failed = append(failed, hc.Host)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("magetargets: deploy:check: %d of %d host(s) of %s need fixing: %s (see above)",
			len(failed), len(res), r.env.DeploymentType, strings.Join(failed, ", "))
	}
	fmt.Fprintln(stdout, green(stdout, fmt.Sprintf("every host of %s is ready to deploy to (%d)", r.env.DeploymentType, len(res))))
	return nil
}

// printHostCheck prints a host's checks, one a line, each failure or
// warning followed by what to fix.
func printHostCheck(w io.Writer, hc release.HostCheck, env, mage string) {
	fmt.Fprintln(w, hc.Host)
	color := tty.Color(w)
	if hc.Err != nil {
		fmt.Fprintf(w, "  %s  %v\n", tty.Paint(color, tty.Red, "FAIL"), advise(hc.Err, mage))
		return
	}
	for _, c := range hc.Checks {
		label := tty.Paint(color, tty.Green, "ok  ")
		switch c.Status {
		case release.CheckFail:
			label = tty.Paint(color, tty.Red, "FAIL")
		case release.CheckWarn:
			label = tty.Paint(color, tty.Yellow, "warn")
		}
		fmt.Fprintf(w, "  %s  %-8s %s\n", label, c.Name, c.Text)
		if fix := checkFix(c, env, mage); fix != "" && c.Status != release.CheckOK {
			fmt.Fprintf(w, "  %4s  %-8s fix: %s\n", "", "", fix)
		}
	}
}

// checkFix is what to do about c, with the settings and the target that
// change it.
func checkFix(c release.Check, env, mage string) string {
	fix := c.Fix
	switch c.Name {
	case "sudo":
		return fix + " (Config.NoSudo)"
	case "root":
		return fix + " (or change Config.Path)"
	case "git":
		return fix + " (Config.SCM)"
	case "python":
		return fix + " (Config.Python)"
	case "restart":
		return fix + " (Config.RestartCommand)"
	case "crontab":
		if c.Status == release.CheckFail {
			return fix + " (Environments[" + fmt.Sprintf("%q", env) + "].Crontab)"
		}
	case "lock":
		if c.Status == release.CheckFail {
			return "wait for it to end; if it died: " + mage + " deploy:unlock"
		}
	}
	return fix
}
