package release

import (
	"context"
	"fmt"
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
	// With slots: Slot serves for Dir once it is live, PrevSlot served
	// for Previous ("" when none did).
	Slot, PrevSlot string
	Elapsed        time.Duration
}

// prepareHost takes the lock on h and makes a release dir ready for t, in one
// SSH session: create the deploy root if missing, lock, bootstrap the
// clones if needed, inspect, reuse the dir that already holds t or update
// the dir current does not point to (fetch, hard reset, submodules), then
// the virtualenv and the requirements unless their stamp matches. On
// failure the lock is released before prepareHost returns, unless the host is
// unreachable (then Unlock must be tried again later).
func prepareHost(ctx context.Context, h sshx.Host, o *Options, t Target) (*Prepared, error) {
	return withOrphanRetry(ctx, h, o, func() (*Prepared, error) { return prepare(ctx, h, o, t) })
}

func prepare(ctx context.Context, h sshx.Host, o *Options, t Target) (*Prepared, error) {
	start := time.Now()
	var in vars
	in.set("MF_PATH", o.Layout.Path)
	in.set("MF_GROUP", o.Group)
	in.set("MF_SCM", o.SCM)
	in.set("MF_TARGET_NAME", t.Name)
	in.set("MF_TARGET_SHA", t.SHA)
	in.set("MF_TARGET_SHORT", t.Short())
	in.set("MF_CRONTAB", o.Crontab)
	// The host talks to this machine (talk.sh) when it pushes, or when
	// downloads are limited: then its script gets its answers on its
	// input. Without either, it gets none, as every other phase.
	x := o.xfer
	if x == nil && o.PushFrom != "" {
		x = newTransfer(ctx, 0, o.PushFrom)
		defer x.close()
	}
	in.flag("MF_PUSH", o.PushFrom != "")
	in.flag("MF_GATE", x != nil && x.slots != nil)
	in.flag("MF_TALK", x != nil)
	// Each session of the phase gets a talk of its own (runWith may run
	// it twice): see runWith.
	var talker func() (*talk, error)
	if x != nil {
		talker = func() (*talk, error) { return x.talk(ctx, t) }
	}
	lock := lockParams{Owner: o.Owner + " deploying " + t.Name, Release: t.Name, Wait: o.LockWait}
	script := phase(lock.part(), venvPart(o), part{files: []string{"inspect", "after", "prepare"}, in: in})
	out, err := script.runTalking(ctx, h, o, o.ForwardAgent && o.PushFrom == "", talker)
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

// venvPart gives venv_install's inputs (hostsh/venv.sh), with venv.sh: it
// makes a virtualenv and installs the requirements unless their stamp
// (see there) matches.
func venvPart(o *Options) part {
	var in vars
	in.set("MF_PYTHON", o.Python)
	in.list("MF_PIP", o.PipInstall)
	in.list("MF_REQUIREMENTS", o.Requirements)
	in.set("MF_EXTRA_STAMP", o.ExtraStamp)
	in.flag("MF_REINSTALL", o.Reinstall)
	return part{files: []string{"talk", "venv"}, in: in}
}
