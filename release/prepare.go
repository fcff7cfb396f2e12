package release

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/magefab/magefab/sshx"
)

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
	return runWith(ctx, h, o, script, nil, forwardAgent)
}

// runWith runs script on h with its inputs in, after the variables every
// script reads (MF_ROOT) and the project's own environment (o.Env).
func runWith(ctx context.Context, h sshx.Host, o *Options, script string, in vars, forwardAgent bool) (*scriptOutput, error) {
	out := &scriptOutput{host: h.Name(), console: o.Console, verbose: o.Verbose, onLock: o.onLock}
	cmd := h.Script(ctx, script)
	var env vars
	env.set("MF_ROOT", o.Layout.Root())
	cmd.Env = append(append(env, o.Env...), in...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ForwardAgent = forwardAgent
	err := cmd.Run()
	return out, err
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
