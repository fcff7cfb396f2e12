package release

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/magefab/magefab/sshx"
)

// Options say how releases are prepared and switched on every host. They
// are the same for all hosts of a run.
type Options struct {
	Layout       Layout
	SCM          string   // git URL the hosts clone from
	Python       string   // interpreter that creates virtualenvs, e.g. python3
	PipInstall   []string // the install command as words, e.g. ["pip", "install"]
	Requirements []string // requirement files, relative to the release dir
	Reinstall    bool     // install requirements even when the stamp matches
	Env          []string // NAME=value for every remote command (DEPLOYMENT_TYPE)
	Sudo         bool     // privileged steps run with sudo -n
	Group        string   // group owning the deploy root (DeployGroup)
	Restart      string   // shell command that restarts the app; "" restarts nothing
	LockWait     time.Duration
	LockStale    time.Duration // a lock older than this is reported as stale; zero means 1h
	Owner        string        // who deploys, written into the lock and the log: "alice@laptop"
	RunID        string        // identifies this run's locks
	ForwardAgent bool          // forward the SSH agent to git on the hosts (clone and fetch over SSH)
	Crontab      string        // crontab file in the release dir installed after each switch; "" none
	CrontabUser  string        // whose crontab (DeployUser)
	Services     []string      // init scripts restarted after the app on each switch, e.g. /etc/init.d/celeryd-five_PRODUCTION
	ExtraStamp   string        // mixed into the requirements stamp, e.g. a hash of private package archives

	// Staged are files on the hosts (absolute, or relative to the login
	// directory) whose new version each host received at
	// StagedPath(file, host) while it prepared, e.g. from Fleet.PerHost.
	// The switch renames each into place right before the services
	// restart, keeping the one it replaces beside it (until the next
	// switch), and a switch back puts that one back; a deploy that stops
	// before the switch removes the staged versions. A file with no staged
	// version is left as it is, and so is a new file that had no previous
	// version when its host is switched back.
	Staged []string

	// Mage is how a user runs a target in this environment, for the
	// commands that messages suggest: "mage env:production", or
	// "MAGEFAB_ENV=qa mage" for an environment without an env:* target.
	// Empty means "mage env:<environment>".
	Mage string

	onLock func(host string) // called when a script has taken the lock on host

	Console *sshx.Console // progress lines; nil prints nothing
	Verbose bool          // also show the tools' own output
}

// command is the command line that runs target in this environment.
func (o *Options) command(target string) string {
	m := o.Mage
	if m == "" {
		m = "mage env:<environment>"
	}
	return m + " " + target
}

func (o *Options) sudo() string {
	if o.Sudo {
		return "sudo -n "
	}
	return ""
}

func (o *Options) lockStale() time.Duration {
	if o.LockStale <= 0 {
		return time.Hour
	}
	return o.LockStale
}

// LockedError reports a deploy lock held by someone else.
type LockedError struct {
	Host    string
	Owner   string    // what the holder wrote: who, what, from where
	Release string    // the release the holder deploys, "" if it did not say
	Since   time.Time // when the lock was taken
	Stale   bool      // older than Options.LockStale
	Hint    string    // the command that clears it, e.g. "mage env:production deploy:unlock"

	holder, id string // the holding process ("host pid") and the lock's run id
}

// withOrphanRetry runs fn; if it finds the lock held by a run of this
// machine whose process has exited, it removes that lock (only if it is
// still the same one) and runs fn once more.
func withOrphanRetry[T any](ctx context.Context, h sshx.Host, o *Options, fn func() (T, error)) (T, error) {
	v, err := fn()
	var le *LockedError
	if !errors.As(err, &le) || le.id == "" || !orphaned(le.holder) {
		return v, err
	}
	if out, uerr := run(ctx, h, o, prelude(o.Layout)+unlockIDScript(le.id), false); uerr != nil {
		return v, fmt.Errorf("%w (removing it as an orphan failed: %v)", err, scriptError(h, "unlock", out, uerr, o))
	}
	return fn()
}

func (e *LockedError) Error() string {
	age := time.Since(e.Since).Round(time.Second)
	if e.Stale {
		return fmt.Sprintf("release: %s: stale lock: held by %s since %s (%s ago); if no deploy is running there, clear it with: %s",
			e.Host, e.Owner, e.Since.Format(time.RFC3339), age, e.Hint)
	}
	return fmt.Sprintf("release: %s: locked by %s since %s (%s ago); wait for that deploy, set MAGEFAB_LOCK_WAIT=90s to wait for it, or if it died: %s",
		e.Host, e.Owner, e.Since.Format(time.RFC3339), age, e.Hint)
}

// DirState is what a release dir on a host holds.
type DirState struct {
	Name     string // "a"
	Head     string // commit checked out, "" if none
	Describe string // git describe of it
	Stamp    string // requirements stamp of its virtualenv, "" if none
	Live     bool   // revisions.log has a switch to this dir with Head that was not undone
}

// HostState is what Inspect finds on a host.
type HostState struct {
	Current string     // the dir current points to, "" if none
	Dirs    []DirState // the release dirs that exist
	// Before is, from revisions.log, the release live before the last
	// one with another commit (zero if the log names none).
	Before Target
}

// Dir returns the state of the named dir.
func (s HostState) Dir(name string) (DirState, bool) {
	for _, d := range s.Dirs {
		if d.Name == name {
			return d, true
		}
	}
	return DirState{}, false
}

func parseState(o *scriptOutput) HostState {
	var s HostState
	if c := o.result("current"); len(c) > 0 {
		s.Current = c[0]
	}
	live := map[string]bool{}
	if l := o.result("live"); len(l) >= 4 {
		live[l[0]], live[l[1]] = true, true
		s.Before = Target{Name: l[2], SHA: l[3]}
	}
	for _, f := range o.all("dir") {
		if len(f) >= 4 {
			s.Dirs = append(s.Dirs, DirState{Name: f[0], Head: f[1], Describe: f[2], Stamp: f[3], Live: f[0] != "" && live[f[0]]})
		}
	}
	return s
}

// Prepared is a host whose new release dir is ready, holding the lock.
type Prepared struct {
	Host      sshx.Host
	Dir       string // the release dir that will go live
	Previous  string // the dir current pointed to before, "" on a first deploy
	Reused    bool   // the dir already held the release: nothing was fetched
	Installed bool   // requirements were installed (the stamp differed)
	Root      string // the releases root, absolute, as the host sees it
	Target    Target // what Dir holds
	Was       Target // what Previous holds
	Elapsed   time.Duration
}

// run runs a script on h, parsing its output.
func run(ctx context.Context, h sshx.Host, o *Options, script string, forwardAgent bool) (*scriptOutput, error) {
	out := &scriptOutput{host: h.Name(), console: o.Console, verbose: o.Verbose, onLock: o.onLock}
	cmd := h.Script(ctx, script)
	cmd.Env = o.Env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ForwardAgent = forwardAgent
	err := cmd.Run()
	return out, err
}

// scriptError turns a failed script into an error with its reason.
func scriptError(h sshx.Host, what string, out *scriptOutput, err error, o *Options) error {
	var ee *sshx.ExitError
	if errors.As(err, &ee) && ee.Status == exitLocked {
		f := out.result("locked")
		le := &LockedError{Host: h.Name(), Owner: "unknown", Hint: o.command("deploy:unlock")}
		if len(f) >= 2 {
			le.Since = parseLockTime(f[0])
			if strings.TrimSpace(f[1]) != "" {
				le.Owner = strings.TrimSpace(f[1])
			}
		}
		if len(f) >= 4 {
			le.holder, le.id = strings.TrimSpace(f[2]), strings.TrimSpace(f[3])
		}
		if len(f) >= 5 {
			le.Release = strings.TrimSpace(f[4])
		}
		le.Stale = time.Since(le.Since) > o.lockStale()
		return le
	}
	if ee == nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %s", what, out.failure(err))
}

// Prepare takes the lock on h and makes a release dir ready for t, in one
// SSH session: create the deploy root if missing, lock, bootstrap the
// clones if needed, inspect, reuse the dir that already holds t or update
// the dir current does not point to (fetch, hard reset, submodules), then
// the virtualenv and the requirements unless their stamp matches. On
// failure the lock is released before Prepare returns, unless the host is
// unreachable (then Unlock must be tried again later).
func Prepare(ctx context.Context, h sshx.Host, o *Options, t Target) (*Prepared, error) {
	return withOrphanRetry(ctx, h, o, func() (*Prepared, error) { return prepare(ctx, h, o, t) })
}

func prepare(ctx context.Context, h sshx.Host, o *Options, t Target) (*Prepared, error) {
	start := time.Now()
	script := prelude(o.Layout) + rootScript(o) + lockReleaseScript(o.RunID, o.Owner+" deploying "+t.Name, t.Name, o.LockWait) +
		`trap 'rm -rf "$lock"' EXIT
` + bootstrapScript(o) + inspectScript(o.Layout, "current") + chooseScript(o, t) + checkAfterSwitchScript(o) + venvScript(o, `"$root/$use/"`+sshx.Quote(o.Layout.Virtualenv)) +
		`trap - EXIT
res "prepared	$use	$prev	$reused	$installed	$root"
`
	out, err := run(ctx, h, o, script, o.ForwardAgent)
	if err != nil {
		return nil, scriptError(h, "prepare", out, err, o)
	}
	f := out.result("prepared")
	if len(f) < 4 {
		return nil, fmt.Errorf("prepare: the host's script gave no result")
	}
	p := &Prepared{Host: h, Dir: f[0], Previous: f[1], Reused: f[2] == "1", Installed: f[3] == "1", Target: t, Elapsed: time.Since(start)}
	if len(f) > 4 {
		p.Root = f[4]
	}
	if d, ok := parseState(out).Dir(p.Previous); ok {
		p.Was = Target{Name: d.Describe, SHA: d.Head}
	}
	return p, nil
}

// rootScript creates Path/ReleasesRoot when missing: as the login user if
// it can, else with sudo, owned by the login user and the deploy group,
// group-writable and setgid so that a team can share it.
func rootScript(o *Options) string {
	sudo := o.sudo()
	path := sshx.Quote(o.Layout.Path)
	return `if [ ! -d "$root" ]; then
  step "creating $root"
  p=` + path + `; case $p in /*) ;; *) p="$HOME/$p" ;; esac
  if ! mkdir -p "$root" 2>/dev/null; then
    ` + sudo + `mkdir -p "$root" && ` + sudo + `chown "$(id -un):"` + sshx.Quote(o.Group) + ` "$p" "$root" && ` + sudo + `chmod 2775 "$p" "$root" ||
      die "cannot create $root as $(id -un)` + map[bool]string{true: " even with sudo -n", false: ""}[o.Sudo] + `: create it, owned by $(id -un) and group ` + sshx.Embed(o.Group) + `"
  fi
fi
`
}

// bootstrapScript clones the repository into the first release dir and
// copies it to the second (without its virtualenv), each through a
// temporary name so that a failure leaves no half dir. The clone's HEAD is
// detached at once, so that inspectScript reads it without git.
func bootstrapScript(o *Options) string {
	l := o.Layout
	a, b := sshx.Quote(l.Dirs[0]), sshx.Quote(l.Dirs[1])
	scm := sshx.Embed(o.SCM)
	return `cloned=0
if [ ! -d "$root/"` + a + `/.git ] && [ ! -d "$root/"` + b + `/.git ]; then
  step "cloning ` + scm + ` into ` + sshx.Embed(l.Dirs[0]) + `"
  rm -rf "$root/.clone.tmp"; cloned=1
  git clone -q --config core.sharedRepository=group ` + sshx.Quote(o.SCM) + ` "$root/.clone.tmp" && git -C "$root/.clone.tmp" checkout -q --detach 2>&1 && mv "$root/.clone.tmp" "$root/"` + a + ` ||
    { rm -rf "$root/.clone.tmp"; die "git clone of ` + scm + ` failed"; }
fi
for pair in ` + a + `:` + b + ` ` + b + `:` + a + `; do
  from=${pair%%:*}; to=${pair#*:}
  if [ -d "$root/$from/.git" ] && [ ! -d "$root/$to/.git" ]; then
    step "copying $from to $to"
    rm -rf "$root/.copy.tmp" "$root/$to"
    cp -a "$root/$from" "$root/.copy.tmp" && rm -rf "$root/.copy.tmp/"` + sshx.Quote(l.Virtualenv) + ` && mv "$root/.copy.tmp" "$root/$to" ||
      { rm -rf "$root/.copy.tmp"; die "copying $from to $to failed"; }
  fi
done
`
}

// chooseScript picks the release dir: the one already holding the commit
// (used as it is: a maintenance flag set there survives), else the one
// current does not point to, brought to the commit: fetched (unless it was
// cloned in this run and has the commit), checked out detached, its
// submodules updated if it has any. It uses inspectScript's $cur, $h0, $h1,
// and refuses a current that points anywhere but a release dir: only a
// release dir is ever switched back to.
func chooseScript(o *Options, t Target) string {
	l := o.Layout
	sha := sshx.Quote(t.SHA)
	return `case $cur in ''|` + sshx.Quote(l.Dirs[0]) + `|` + sshx.Quote(l.Dirs[1]) + `) ;;
  *) die "$root/` + sshx.Embed(l.Current) + ` points to $cur, which is not one of the release dirs ` + sshx.Embed(l.Dirs[0]+" and "+l.Dirs[1]) + `: point it at one of them (or remove it), then deploy again" ;;
esac
prev=$cur use=
for d in ` + sshx.Join(l.Dirs[0]+":0", l.Dirs[1]+":1") + `; do
  eval "h=\$h${d##*:}"; d=${d%:*}
  [ "$h" = ` + sha + ` ] || continue
  if [ -z "$use" ] || [ "$d" = "$cur" ]; then use=$d; fi
done
reused=0
if [ -n "$use" ] && [ $cloned = 1 ]; then
  step "$use holds ` + sshx.Embed(t.Name) + ` as cloned"
elif [ -n "$use" ]; then
  reused=1
  step "` + sshx.Embed(t.Name) + ` is already in $use: using it as it is"
else
  if [ "$cur" = ` + sshx.Quote(l.Dirs[0]) + ` ]; then use=` + sshx.Quote(l.Dirs[1]) + `; else use=` + sshx.Quote(l.Dirs[0]) + `; fi
  step "updating $use to ` + sshx.Embed(t.Name) + ` (` + sshx.Embed(t.Short()) + `)"
  cd "$root/$use" || die "cannot enter $root/$use"
  if [ $cloned = 0 ] || ! git cat-file -e ` + sshx.Quote(t.SHA+"^{commit}") + ` 2>/dev/null; then
    [ "$(git config --get remote.origin.url)" = ` + sshx.Quote(o.SCM) + ` ] || git remote set-url origin ` + sshx.Quote(o.SCM) + ` || die "cannot set the origin of $use"
    git fetch -q --tags origin 2>&1 || die "git fetch in $root/$use failed"
  fi
  git checkout -q -f --detach ` + sha + ` 2>&1 || die "git checkout of ` + sshx.Embed(t.Short()) + ` in $root/$use failed: is the commit on the remote?"
  if [ -f .gitmodules ]; then
    git submodule -q update --init --recursive 2>&1 || die "git submodule update in $root/$use failed"
  fi
fi
cd "$root/$use" || die "cannot enter $root/$use"
`
}

// venvScript makes the release's virtualenv and installs the requirements
// unless their stamp (a hash of the interpreter's path, size and mtime,
// the install command and the requirement files' names and content)
// matches the one stored in the virtualenv. Computing it starts no Python.
//
// When the host's interpreter has a pip of its own that can work for
// another environment (pip >= 22.3 has __pip-runner__.py), the virtualenv
// is made without pip (python -m venv --without-pip takes a tenth of the
// time) and the virtualenv's interpreter runs that pip; otherwise the
// virtualenv gets its own pip.
//
// It runs in the release dir (requirement files are relative to it); venv
// is a shell word giving the virtualenv's path.
func venvScript(o *Options, venv string) string {
	reqs := sshx.Join(o.Requirements...)
	if len(o.Requirements) == 0 {
		reqs = ""
	}
	var args strings.Builder
	pipCmd := o.PipInstall
	if len(pipCmd) > 0 && pipCmd[0] == "pip" {
		pipCmd = pipCmd[1:]
	} else {
		pipCmd = nil
	}
	for _, a := range pipCmd {
		args.WriteString(" " + sshx.Quote(a))
	}
	for _, r := range o.Requirements {
		args.WriteString(" -r " + sshx.Quote(r))
	}
	// A command that is not "pip ..." runs as it is, with the virtualenv
	// first on PATH.
	install := `if [ -x "$venv/bin/pip" ]; then pip` + args.String() + `
    else findpip; [ -n "$pipdir" ] || die "$venv has no pip, and ` + sshx.Embed(o.Python) + ` on the host has no pip >= 22.3 to install into it: install python3-pip"
      "$venv/bin/python" "$pipdir/__pip-runner__.py"` + args.String() + `; fi`
	if pipCmd == nil {
		install = sshx.Join(o.PipInstall...)
		for _, r := range o.Requirements {
			install += " -r " + sshx.Quote(r)
		}
	}
	reinstall := "0"
	if o.Reinstall {
		reinstall = "1"
	}
	name := sshx.Embed(o.Python)
	var b strings.Builder
	b.WriteString(`installed=0 venv=` + venv + ` pipdir=-
hostpy=$(command -v ` + py(o) + `) || die "` + name + ` not found on the host: install it, or set Python"
findpip() {
  [ "$pipdir" = - ] || return 0
  pipdir=$("$hostpy" -c 'import importlib.util as u; s = u.find_spec("pip"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null) || pipdir=
  [ -f "$pipdir/__pip-runner__.py" ] || pipdir=
}
for f in ` + reqs + `; do [ -f "$f" ] || die "requirements file $f is missing from $PWD"; done
stamp=$({ stat -L -c '%n %s %Y' "$hostpy"; printf '%s\n' ` + sshx.Quote(strings.Join(o.PipInstall, " ")) + ` ` + sshx.Quote(o.ExtraStamp) + `; for f in ` + reqs + `; do printf '%s\n' "$f"; cat "$f"; done; } | sha256sum); stamp=${stamp%% *}
if [ ! -x "$venv/bin/python" ]; then
  step "creating the virtualenv $venv"
  rm -rf "$venv"
  findpip; if [ -n "$pipdir" ]; then nopip=--without-pip; else nopip=; fi
  ` + py(o) + ` -m venv $nopip "$venv" 2>&1 || { rm -rf "$venv"; die "creating the virtualenv with ` + name + ` -m venv failed (Debian: apt-get install python3-venv)"; }
fi
old=
[ -f "$venv/.magefab-stamp" ] && read -r old < "$venv/.magefab-stamp"
if [ ` + reinstall + ` = 1 ] || [ "$old" != "$stamp" ]; then
  rm -f "$venv/.magefab-stamp"
  installed=1
`)
	if len(o.Requirements) > 0 {
		b.WriteString(`  step "installing requirements"
  ( VIRTUAL_ENV=$venv PATH="$venv/bin:$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1; export VIRTUAL_ENV PATH PIP_DISABLE_PIP_VERSION_CHECK
    ` + install + ` ) 2>&1 || die "installing requirements failed"
`)
	}
	b.WriteString(`  printf '%s\n' "$stamp" > "$venv/.magefab-stamp" || die "cannot write $venv/.magefab-stamp"
else
  step "requirements unchanged: nothing to install"
fi
`)
	return b.String()
}

func py(o *Options) string { return sshx.Quote(o.Python) }

// checkAfterSwitchScript checks in the prepare script, before any host
// switches, what the after-switch steps need: the environment's crontab
// file in the release dir ($use) and the crontab command. A switch that
// fails there would have to be undone on every host.
func checkAfterSwitchScript(o *Options) string {
	return checkCrontabScript(o, "$use", "add it to the release, or change the environment's Crontab", func(msg string) string { return "die " + msg })
}

// checkCrontabScript checks the crontab file in the release dir named by
// dir (a shell expansion such as $use) and the crontab command; fail(msg)
// gives the command that reports a failure, msg being a double-quoted
// shell word. advice ends the message of a missing file.
func checkCrontabScript(o *Options, dir, advice string, fail func(msg string) string) string {
	if o.Crontab == "" {
		return ""
	}
	c := sshx.Embed(o.Crontab)
	return `[ -f "$root/` + dir + `/"` + sshx.Quote(o.Crontab) + ` ] || ` + fail(`"crontab file `+c+` is missing from release `+dir+` ($root/`+dir+`/`+c+`): `+sshx.Embed(advice)+`"`) + `
command -v crontab >/dev/null 2>&1 || ` + fail(`"the crontab command is not installed on this host (needed to install `+c+`): install cron"`) + `
`
}

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

// switchError reads where a failed switch script left its host from its
// exit status: after is the dir a failed restart leaves it in, previous
// the dir a failed undo leaves it in; any other failure leaves it unknown.
func switchError(h sshx.Host, out *scriptOutput, err error, after, previous string) *SwitchError {
	se := &SwitchError{Host: h.Name(), Reason: out.failure(err), Serving: "unknown", Err: err}
	var ee *sshx.ExitError
	if errors.As(err, &ee) {
		switch ee.Status {
		case exitRestartFail:
			se.Serving = after
		case exitCompFail:
			se.Serving, se.Down = after, true
		case exitUndoFail:
			se.Serving, se.Incomplete = previous, true
		}
	}
	return se
}

// SwitchError is a failed switch or restart on one host, and what the host
// serves afterwards.
type SwitchError struct {
	Host    string
	Reason  string
	Serving string // the release dir current points to now, or "unknown"
	Down    bool   // the restart with Serving failed too: the app may be down
	// Incomplete says that current points to Serving and the app
	// restarted, but an after-switch step (crontab, staged file, service)
	// could not be undone: Reason says which.
	Incomplete bool
	Err        error
}

func (e *SwitchError) Error() string {
	switch {
	case e.Serving == "unknown":
		return fmt.Sprintf("switch: %s (what %s serves is unknown: check with deploy:status)", e.Reason, e.Host)
	case e.Down:
		return fmt.Sprintf("switch: %s; current points to %s again, but the app did not restart", e.Reason, e.Serving)
	case e.Incomplete:
		return fmt.Sprintf("switch: %s; %s serves the release in %s again, but not every after-switch step was undone", e.Reason, e.Host, e.Serving)
	}
	return fmt.Sprintf("switch: %s; %s serves the release in %s again", e.Reason, e.Host, e.Serving)
}

func (e *SwitchError) Unwrap() error { return e.Err }

// Unlock releases this run's lock on h, if it still holds it, and removes
// the staged files (Options.Staged) that no switch put in place. A lock
// that the detached part of an interrupted switch holds stays: that
// script releases it when it is done.
func Unlock(ctx context.Context, h sshx.Host, o *Options) error {
	script := prelude(o.Layout) + `lock="$root/.lock" id=
` + detachedAlive + `[ -f "$lock/id" ] && read -r id < "$lock/id"
if [ "$id" = ` + sshx.Quote(o.RunID) + ` ] && detached_alive; then
  step "a switch interrupted here is still finishing by itself: it releases the lock when done"
elif [ "$id" = ` + sshx.Quote(o.RunID) + ` ]; then
` + indent(discardStagedScript(o, h.Name()), "  ") + `  rm -rf "$lock" && res "unlocked"
fi
`
	out, err := run(ctx, h, o, script, false)
	if err != nil {
		return scriptError(h, "unlock", out, err, o)
	}
	return nil
}

// ForceUnlock removes the lock on h whoever holds it, and returns what the
// lock said about its holder ("" if there was no lock, "unknown" if it
// said nothing).
func ForceUnlock(ctx context.Context, h sshx.Host, o *Options) (string, error) {
	out, err := run(ctx, h, o, prelude(o.Layout)+`lock="$root/.lock"
if [ -d "$lock" ]; then
  printf 'magefab:held\t%s\n' "$(head -c 500 "$lock/owner" 2>/dev/null | tr '\t\n' '  ' || true)"
  rm -rf "$lock" || die "cannot remove $lock"
fi
`, false)
	if err != nil {
		return "", scriptError(h, "unlock", out, err, o)
	}
	if f := out.result("held"); len(f) > 0 {
		if held := strings.TrimSpace(f[0]); held != "" {
			return held, nil
		}
		return "unknown", nil
	}
	return "", nil
}
