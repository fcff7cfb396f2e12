package release

import (
	"context"
	"fmt"
	"path"
	"strings"
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

func (m switchMode) String() string {
	switch m {
	case forward:
		return "forward"
	case backward:
		return "backward"
	case recovery:
		return "recovery"
	}
	return fmt.Sprintf("switchMode(%d)", int(m))
}

// switchParams say what a switch does on a host (hostsh/switch.sh tells
// what each mode does there).
type switchParams struct {
	Mode   switchMode
	Host   string // the host's name, which names its staged files
	Dir    string // the release dir to make live
	Prev   string // the release dir current pointed to before, "" for none
	Target Target // what Dir holds
	Was    Target // what Prev holds
	What   string // the note of the switch in revisions.log
	// With slots: the slot that serves for Dir, the one that serves
	// for Prev.
	Slot, PrevSlot string
}

// part is the switch script with its inputs. Forward, the lock is held
// since prepare; backward and recovery, the script takes it (add the
// lock's part, see lockParams).
func (p switchParams) part(o *Options) part {
	in := afterSwitchVars(o, p.Host)
	in.set("MF_MODE", p.Mode.String())
	in.set("MF_DIR", p.Dir)
	in.set("MF_PREV", p.Prev)
	in.set("MF_OWNER", o.Owner)
	in.set("MF_TARGET_NAME", p.Target.Name)
	in.set("MF_TARGET_SHA", p.Target.SHA)
	in.set("MF_WAS_NAME", p.Was.Name)
	in.set("MF_WAS_SHA", p.Was.SHA)
	in.set("MF_WHAT", p.What)
	in.set("MF_SLOT_NEW", p.Slot)
	in.set("MF_SLOT_OLD", p.PrevSlot)
	texts := []textInput{{name: "MF_DETACHED", text: detachedText()}}
	return part{files: []string{"lock", "after", "slot", "switch"}, in: in, texts: texts}
}

// detachedText is the part of a switch that an interruption runs
// detached (hostsh/detached.sh), whole: the switch gets it as MF_DETACHED
// and runs it with sh -c.
func detachedText() *hostText { return hostTextOf("lock", "after", "detached") }

// detachedScript is detachedText's text.
func detachedScript() string { return detachedText().text }

// afterSwitchVars are the inputs of the after-switch steps and the app's
// restart (hostsh/after.sh).
func afterSwitchVars(o *Options, host string) vars {
	var in vars
	restart := o.Restart
	if o.Slots != nil {
		restart = "" // a slot serves without one
	}
	in.set("MF_RESTART", restart)
	in.set("MF_CRONTAB", o.Crontab)
	in.set("MF_CRONTAB_USER", o.CrontabUser)
	in.list("MF_STAGED", stagedList(o, host))
	in.list("MF_SERVICES", o.Services)
	return in
}

// stagedList gives, for each staged file, the file, where its new version
// waits and where the version it replaces is kept.
func stagedList(o *Options, host string) []string {
	var l []string
	for _, f := range o.Staged {
		l = append(l, f, StagedPath(f, host), asidePath(f, host))
	}
	return l
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

// switchHost makes the prepared dir live on its host, restarts the app, runs
// the after-switch steps (crontab, staged files, services) and releases
// the lock (one SSH session). If the restart or an after-switch step
// fails, the host is switched back to its previous dir, what the steps
// changed is undone and the app restarted before switchHost returns its error
// (*SwitchError tells whether that worked).
func switchHost(ctx context.Context, p *Prepared, o *Options, what string) error {
	sp := switchParams{Mode: forward, Host: p.Host.Name(), Dir: p.Dir, Prev: p.Previous, Target: p.Target, Was: p.Was, What: what, Slot: p.Slot, PrevSlot: p.PrevSlot}
	out, err := sp.part(o).run(ctx, p.Host, o, false)
	slotResult(out, p)
	if err == nil {
		return nil
	}
	return switchError(p.Host, out, err, p.Previous, p.Previous)
}
