package release

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/magefab/magefab/sshx"
)

// switchMode says what a switch script does.
type switchMode int

const (
	// forward makes a prepared release live.
	forward switchMode = iota
	// backward puts a host whose switch went through back on its
	// previous release: every after-switch step is undone.
	backward
	// recovery puts a host whose switch ended in an unknown state on its
	// previous release, like backward, whatever the switch got to: it
	// never points current at prev, and puts the staged files' kept
	// versions back only if current points at prev when it starts.
	recovery
)

// switchScript points current at dir atomically (a new link renamed over
// the old: there is never a moment without one), logs the switch, restarts
// the app, runs the after-switch steps (crontab, staged files, services)
// and releases the lock.
//
// Forward, if the restart or an after-switch step fails, it switches back
// to prev, undoes the after-switch steps that ran, and restarts before
// failing, so the host keeps serving prev: a host never stays on a release
// that failed.
//
// Backward, dir is the release the host served before it switched to prev:
// the after-switch steps are undone (the crontab of dir, the files kept
// aside put back, the services restarted). If the app does not restart
// with dir, the host returns to prev, whose after-switch steps are still
// in place. A step that cannot be undone does not move the host again: the
// other steps are still undone, and the script exits with exitUndoFail,
// dir live. With prev equal to dir (a redeploy switched back), and in
// recovery mode, a failed restart also leaves dir live: the undo goes on,
// and the script exits with exitCompFail.
func switchScript(o *Options, host, dir, prev string, t, was Target, what string, mode switchMode) string {
	s, _, _ := switchParts(o, host, dir, prev, t, was, what, mode)
	return s
}

// switchParts returns the switch script, the body of the trap it sets for
// an interruption (TERM, INT, HUP, PIPE), and the script that trap runs
// detached ("" for none).
func switchParts(o *Options, host, dir, prev string, t, was Target, what string, mode switchMode) (script, trapBody, detached string) {
	l := o.Layout
	restart := "true"
	if o.Restart != "" {
		restart = o.sudo() + "/bin/sh -c " + sshx.Quote(o.Restart)
	}
	link := func(to string, t Target, note string) string {
		return `ln -sfn ` + sshx.Quote(to) + ` "$root/"` + sshx.Quote(l.Current+".tmp") + ` && mv -T "$root/"` + sshx.Quote(l.Current+".tmp") + ` "$root/"` + sshx.Quote(l.Current) + ` || die "cannot switch ` + sshx.Embed(l.Current) + ` to ` + sshx.Embed(to) + `"
printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ` + sshx.Quote(o.Owner) + ` ` + sshx.Quote(t.Name) + ` ` + sshx.Quote(t.SHA) + ` ` + sshx.Quote(to) + ` ` + note + ` >> "$root/revisions.log"
`
	}
	// flip: a failed restart (or, forward, a failed after-switch step)
	// points current at prev (forward, prev may be dir: a redeploy of the
	// live dir stays there and undoes its steps). Otherwise a switch back
	// (or a recovery) keeps dir live whatever fails, and a forward switch
	// with nowhere to go (a first deploy) fails.
	flip := prev != "" && (prev != dir || mode == forward) && mode != recovery
	// The dir whose after-switch steps an undo restores.
	undoDir := dir
	if mode == forward {
		undoDir = prev
	}
	var b strings.Builder
	b.WriteString(`id=; [ -f "$root/.lock/id" ] && read -r id < "$root/.lock/id"
[ "$id" = ` + sshx.Quote(o.RunID) + ` ] || die "the deploy lock is no longer held by this run"
[ -d "$root/"` + sshx.Quote(dir) + `/.git ] || die "release dir ` + sshx.Embed(dir) + ` is missing"
undo_failed= down=
`)
	switch mode {
	case forward:
		b.WriteString(afterSwitchFlags(o, "") + "\n")
		// A version of a staged file kept aside by an earlier switch goes
		// now: a kept file is then always the one this switch replaced.
		for _, f := range o.Staged {
			a := sshx.Quote(asidePath(f, host))
			b.WriteString(`if [ -e ` + a + ` ]; then ` + o.sudo() + `rm -f ` + a + ` || die ` + sshx.Quote("cannot remove "+asidePath(f, host)+", kept by an earlier switch") + `; fi
`)
		}
	case backward:
		b.WriteString(afterSwitchFlags(o, "1") + "\n")
	case recovery:
		// The staged files are put back only if current points at prev:
		// then the switch to prev went through, and their kept versions
		// are the ones it replaced. Otherwise it never got there, or went
		// back already.
		b.WriteString("full=\n")
		if prev != "" && prev != dir {
			b.WriteString(`cur0=$(readlink "$root/"` + sshx.Quote(l.Current) + ` 2>/dev/null || true); [ "${cur0##*/}" = ` + sshx.Quote(prev) + ` ] && full=1
`)
		}
		flags := strings.Fields(afterSwitchFlags(o, "1"))
		for i, v := range flags {
			if strings.HasPrefix(v, "did_f") {
				flags[i] = strings.TrimSuffix(v, "1") + "$full"
			}
		}
		b.WriteString(strings.Join(flags, " ") + "\n")
	}
	// recordFailure reports a step that could not be undone, and goes on.
	recordFailure := func(msg string) string {
		return `{ printf 'magefab:error %s\n' ` + sshx.Quote(msg) + `; undo_failed=1; }`
	}
	// back REASON NOTE: put the host back on prev (or, with no prev, fail).
	switch {
	case flip && mode == forward:
		// The undo goes on past a step that fails; the exit status says
		// whether the app restarted with prev (exitCompFail if not), and
		// then whether every step was undone (exitUndoFail if not).
		back := "switched back to " + prev
		if prev == dir {
			back = prev + " stays live"
		}
		b.WriteString(`back() {
  printf 'magefab:error %s; %s\n' "$1" ` + sshx.Quote(back) + `
  ` + strings.ReplaceAll(link(prev, was, `"$2"`), "\n", "\n  ") + `if ! ` + restart + ` 2>&1; then printf 'magefab:error %s\n' ` + sshx.Quote("restarting with "+prev+" failed too") + `; down=1; fi
` + indent(undoAfterSwitchScript(o, host, prev, recordFailure), "  ") + `  [ -z "$down" ] || exit ` + fmt.Sprint(exitCompFail) + `
  [ -z "$undo_failed" ] || exit ` + fmt.Sprint(exitUndoFail) + `
  exit ` + fmt.Sprint(exitRestartFail) + `
}
`)
	case flip:
		// A switch back whose restart fails returns to the release the
		// host switched to: nothing of its after-switch steps was undone
		// yet, so nothing is left to undo on an interruption either.
		b.WriteString(`back() {
  printf 'magefab:error %s; switched back to %s\n' "$1" ` + sshx.Quote(prev) + `
  ` + afterSwitchFlags(o, "") + `
  ` + strings.ReplaceAll(link(prev, was, `"$2"`), "\n", "\n  ") + `if ! ` + restart + ` 2>&1; then printf 'magefab:error %s\n' ` + sshx.Quote("restarting with "+prev+" failed too") + `; trap - TERM INT HUP PIPE; exit ` + fmt.Sprint(exitCompFail) + `; fi
  trap - TERM INT HUP PIPE
  exit ` + fmt.Sprint(exitRestartFail) + `
}
`)
	case mode == forward:
		b.WriteString("back() { die \"$1\"; }\n")
	default:
		// Switching back in place: a failed restart leaves dir live, and
		// the undo goes on.
		b.WriteString(`back() { printf 'magefab:error %s\n' "$1"; down=1; }
`)
	}
	b.WriteString(link(dir, t, sshx.Quote(what)))
	// Stopped between the switch and the end of the after-switch steps (the
	// run timed out on this host, or its connection died), the host ends
	// the job by itself, detached so that the session's end cannot kill it
	// half way: forward, it goes back to prev (the run treats it as failed
	// and switches the other hosts back too), restarts and undoes what the
	// after-switch steps did; backward, it goes on switching back to dir:
	// it restarts and undoes the after-switch steps. Then it releases the
	// lock, which it marks as its own meanwhile (see detachedAlive): no
	// other script removes it while it runs. The trap waits until the
	// detached script has written its mark, and so has left the session's
	// process group, which may be killed once the script exits.
	if flip || mode != forward {
		detached = `step() { :; }
id=; [ -f "$root/.lock/id" ] && read -r id < "$root/.lock/id"
[ "$id" = ` + sshx.Quote(o.RunID) + ` ] && echo $$ > "$root/.lock/detached"
` + restart + `
` + undoAfterSwitchScript(o, host, undoDir, func(string) string { return ":" }) + `[ "$id" = ` + sshx.Quote(o.RunID) + ` ] && rm -rf "$root/.lock"`
		relink := ""
		if mode == forward {
			relink = link(prev, was, sshx.Quote("switched back: interrupted during the restart"))
		}
		trapBody = `trap - TERM INT HUP PIPE EXIT
{ ` + relink + `: > "$root/.lock/detached"; root=$root ` + afterSwitchFlagsEnv(o) + `setsid /bin/sh -c ` + sshx.Quote(detached) + ` </dev/null & } >/dev/null 2>&1
n=0; while [ -d "$root/.lock" ] && [ ! -s "$root/.lock/detached" ] && [ $n -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; n=$((n + 1)); done
exit 143`
		b.WriteString(`trap '` + strings.ReplaceAll(trapBody, "'", `'\''`) + `' TERM INT HUP PIPE
`)
	}
	b.WriteString(`step "` + sshx.Embed(l.Current+" -> "+dir+" ("+t.Name+"); restarting") + `"
` + restart + ` 2>&1 || back ` + sshx.Quote("restart failed with "+l.Current+" -> "+dir) + ` 'switched back: restart failed'
`)
	if mode == forward {
		b.WriteString(afterSwitchScript(o, host, dir))
	} else {
		b.WriteString(undoAfterSwitchScript(o, host, dir, recordFailure))
	}
	b.WriteString("trap - TERM INT HUP PIPE\n")
	b.WriteString(unlockScript(o.RunID))
	if mode != forward {
		b.WriteString(`[ -z "$down" ] || exit ` + fmt.Sprint(exitCompFail) + `
[ -z "$undo_failed" ] || exit ` + fmt.Sprint(exitUndoFail) + "\n")
	}
	return b.String(), trapBody, detached
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}

// The after-switch steps set a shell variable once they changed something,
// so that a switch back undoes only what was done: did_cron (the crontab
// was installed), did_f<i> (Staged[i] was put in place), did_s<i>
// (Services[i] was restarted, or tried to). afterSwitchFlags sets them
// all to value.
func afterSwitchFlags(o *Options, value string) string {
	vars := []string{"did_cron=" + value}
	for i := range o.Staged {
		vars = append(vars, fmt.Sprintf("did_f%d=%s", i, value))
	}
	for i := range o.Services {
		vars = append(vars, fmt.Sprintf("did_s%d=%s", i, value))
	}
	return strings.Join(vars, " ")
}

// afterSwitchFlagsEnv passes the flags on to a detached shell.
func afterSwitchFlagsEnv(o *Options) string {
	var b strings.Builder
	for _, v := range strings.Fields(afterSwitchFlags(o, "")) {
		name := strings.TrimSuffix(v, "=")
		b.WriteString(name + "=$" + name + " ")
	}
	return b.String()
}

// afterSwitchScript installs the crontab of the release now live, puts the
// staged files in place and restarts the other services, after the app
// restarted. A failure calls back, which puts the host back on the
// previous release.
func afterSwitchScript(o *Options, host, dir string) string {
	var b strings.Builder
	sudo := o.sudo()
	if o.Crontab != "" {
		file := `"$root/"` + sshx.Quote(dir) + `/` + sshx.Quote(o.Crontab)
		b.WriteString(`[ -f ` + file + ` ] || back ` + sshx.Quote("crontab file "+o.Crontab+" is missing from release "+dir) + ` 'switched back: crontab file missing'
` + crontab(o, file) + ` 2>&1 || back ` + sshx.Quote("installing the crontab for "+o.CrontabUser+" failed") + ` 'switched back: crontab install failed'
did_cron=1
step "crontab installed for ` + sshx.Embed(o.CrontabUser) + `"
`)
	}
	for i, f := range o.Staged {
		n, a, d := sshx.Quote(StagedPath(f, host)), sshx.Quote(asidePath(f, host)), sshx.Quote(f)
		b.WriteString(`if [ -f ` + n + ` ]; then
  { if [ -f ` + d + ` ]; then ` + sudo + `cp -p ` + d + ` ` + a + `; else ` + sudo + `rm -f ` + a + `; fi && ` + sudo + `mv -f ` + n + ` ` + d + `; } 2>&1 || back ` + sshx.Quote("cannot put the new "+f+" in place") + ` 'switched back: staged file failed'
  did_f` + fmt.Sprint(i) + `=1
  step "new ` + sshx.Embed(f) + ` in place"
fi
`)
	}
	for i, svc := range o.Services {
		b.WriteString(`did_s` + fmt.Sprint(i) + `=1
` + sudo + sshx.Quote(svc) + ` restart 2>&1 || back ` + sshx.Quote("restarting "+svc+" failed") + ` 'switched back: service restart failed'
step "restarted ` + sshx.Embed(svc) + `"
`)
	}
	return b.String()
}

// undoAfterSwitchScript undoes the after-switch steps whose flag is set
// (see afterSwitchFlags) once current points to dir again: the crontab of
// dir, the staged files' previous versions put back, the services
// restarted. A crontab file missing from dir leaves the crontab as it is.
// fail(msg) gives the command that reports a failure.
func undoAfterSwitchScript(o *Options, host, dir string, fail func(msg string) string) string {
	var b strings.Builder
	sudo := o.sudo()
	did := func(flag string) string {
		return `[ "${` + flag + `:-}" = 1 ]`
	}
	if o.Crontab != "" {
		file := `"$root/"` + sshx.Quote(dir) + `/` + sshx.Quote(o.Crontab)
		b.WriteString(`if ` + did("did_cron") + `; then
  if [ -f ` + file + ` ]; then
    if ` + crontab(o, file) + ` 2>&1; then step "crontab of ` + sshx.Embed(dir) + ` installed for ` + sshx.Embed(o.CrontabUser) + `"
    else ` + fail("reinstalling the crontab of "+dir+" for "+o.CrontabUser+" failed") + `; fi
  else
    step "` + sshx.Embed(dir) + ` has no ` + sshx.Embed(o.Crontab) + `: the crontab is left as it is"
  fi
fi
`)
	}
	for i, f := range o.Staged {
		a, d := sshx.Quote(asidePath(f, host)), sshx.Quote(f)
		b.WriteString(`if ` + did("did_f"+fmt.Sprint(i)) + ` && [ -f ` + a + ` ]; then
  if ` + sudo + `mv -f ` + a + ` ` + d + ` 2>&1; then step "previous ` + sshx.Embed(f) + ` back in place"
  else ` + fail("cannot put the previous "+f+" back") + `; fi
fi
`)
	}
	for i, svc := range o.Services {
		b.WriteString(`if ` + did("did_s"+fmt.Sprint(i)) + `; then
  if ` + sudo + sshx.Quote(svc) + ` restart 2>&1; then step "restarted ` + sshx.Embed(svc) + `"
  else ` + fail("restarting "+svc+" with "+dir+" failed") + `; fi
fi
`)
	}
	return b.String()
}

// StagedPath is where a host receives the new version of a file of
// Options.Staged while it prepares: beside the file (so that the switch
// renames it into place atomically), hidden, and named for the host (hosts
// that share the directory do not take each other's).
func StagedPath(file, host string) string {
	return stagedName(file, host, "new")
}

// asidePath is where the switch keeps the version of a staged file it
// replaced, for a switch back. It stays there until the next switch.
func asidePath(file, host string) string {
	return stagedName(file, host, "previous")
}

func stagedName(file, host, what string) string {
	dir, base := path.Split(file)
	h := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, host)
	return dir + "." + base + ".magefab-" + what + "." + h
}

// discardStagedScript removes this host's staged files that no switch put
// in place. It never fails: it runs while locks are released.
func discardStagedScript(o *Options, host string) string {
	var b strings.Builder
	for _, f := range o.Staged {
		n := sshx.Quote(StagedPath(f, host))
		b.WriteString(`if [ -e ` + n + ` ]; then ` + o.sudo() + `rm -f ` + n + ` || step ` + sshx.Quote("could not remove "+StagedPath(f, host)) + `; fi
`)
	}
	return b.String()
}

func crontab(o *Options, file string) string {
	if o.Sudo {
		return "sudo -n crontab -u " + sshx.Quote(o.CrontabUser) + " " + file
	}
	return "crontab " + file
}

// Switch makes the prepared dir live on its host, restarts the app, runs
// the after-switch steps (crontab, staged files, services) and releases
// the lock (one SSH session). If the restart or an after-switch step
// fails, the host is switched back to its previous dir, what the steps
// changed is undone and the app restarted before Switch returns its error
// (*SwitchError tells whether that worked).
func Switch(ctx context.Context, p *Prepared, o *Options, what string) error {
	out, err := run(ctx, p.Host, o, prelude(o.Layout)+switchScript(o, p.Host.Name(), p.Dir, p.Previous, p.Target, p.Was, what, forward), false)
	if err == nil {
		return nil
	}
	return switchError(p.Host, out, err, p.Previous, p.Previous)
}
