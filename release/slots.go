package release

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/magefab/magefab/sshx"
)

// Slots run each release dir as processes of its own ("slots"), so that a
// switch moves traffic to a process that already started and answered,
// and the one it replaces drains instead of being restarted: no request
// fails while the fleet switches (hostsh/slot.sh tells how a host keeps
// them).
//
// A slot is named for its release dir (a), or the dir and .1 (a.1) for a
// second process of the dir started beside the first (a restart in
// place). It listens on its own unix socket, <dir>/run/<slot>.sock, where
// magefab checks it, and <dir>/run/app.sock is kept a symlink to the
// socket of the slot that serves for the dir. Traffic reaches the slots
// one of two ways:
//
//   - Front mode (Port 0): a server on the host (nginx) proxies to
//     <root>/<current>/run/app.sock. Since connect() resolves the links
//     at each connection, pointing current (or app.sock) elsewhere is the
//     traffic's move, atomic and without a reload. A deploy starts and
//     checks the new release's slot on every host before any switches.
//   - Shared port (Port > 0): the slots also listen together on one TCP
//     port with SO_REUSEPORT. A slot starting joins the port at once, so
//     a deploy starts the new slot in the switch, and the old slots serve
//     beside the new ones until every host switched and passed the check;
//     then they drain.
//
// Either way, a failure switches every host back by pointing current back
// and stopping the new slots: the old slots never stopped, and nothing
// restarts.
type Slots struct {
	// Start starts a slot in the background and returns once it started
	// (a shell command run as root, like Options.Restart). Stop drains
	// one: it stops accepting, finishes the requests in flight within
	// MAGEFAB_DRAIN_TIMEOUT seconds, exits, and returns once it exited;
	// a slot that does not run is no error. Logs prints a slot's last
	// log lines, shown when a slot fails to start. Each runs from the
	// login directory with the slot in its environment: MAGEFAB_SLOT (the
	// slot's name), MAGEFAB_SLOT_RELEASE (its release dir's name),
	// MAGEFAB_SLOT_DIR (that dir, absolute), MAGEFAB_SLOT_SOCKET (its
	// socket), MAGEFAB_SLOT_PORT (Port) and MAGEFAB_DRAIN_TIMEOUT.
	Start, Stop, Logs string
	// Check is the path a started slot is asked over HTTP on its socket:
	// it must answer with a status below 400 within StartTimeout.
	Check string
	// Port is the TCP port the slots share; 0 means front mode.
	Port int
	// StartTimeout bounds the wait for a started slot to answer; zero
	// means 30 seconds. DrainTimeout is what a slot is given to drain;
	// zero means 30 seconds.
	StartTimeout, DrainTimeout time.Duration
}

// Defaults of Slots' zero fields.
const (
	DefaultSlotStartTimeout = 30 * time.Second
	DefaultSlotDrainTimeout = 30 * time.Second
)

func (s *Slots) startTimeout() time.Duration {
	if s.StartTimeout > 0 {
		return s.StartTimeout
	}
	return DefaultSlotStartTimeout
}

func (s *Slots) drainTimeout() time.Duration {
	if s.DrainTimeout > 0 {
		return s.DrainTimeout
	}
	return DefaultSlotDrainTimeout
}

// front says whether the slots of o start before the switch: in front
// mode (no shared port) a started slot gets no traffic until current
// points at its dir.
func (o *Options) front() bool { return o.Slots != nil && o.Slots.Port == 0 }

// slotCheckPy asks a slot over its socket (see hostsh/slot.sh).
//
//go:embed hostsh/slotcheck.py
var slotCheckPy string

// seconds renders d in whole seconds, at least 1.
func seconds(d time.Duration) string {
	return strconv.Itoa(max(int((d+time.Second-1)/time.Second), 1))
}

// slotEnv are the inputs of hostsh/slot.sh, which every part with it gets
// (see part.run): MF_SLOT_START is "" when the project runs no slots.
func slotEnv(o *Options) vars {
	var in vars
	s := o.Slots
	if s == nil {
		in.set("MF_SLOT_START", "")
		return in
	}
	in.set("MF_SLOT_START", s.Start)
	in.set("MF_SLOT_STOP", s.Stop)
	logs := s.Logs
	if logs == "" {
		logs = `tail -n 20 "$MAGEFAB_SLOT_DIR/run/$MAGEFAB_SLOT.log"`
	}
	in.set("MF_SLOT_LOGS", logs)
	check := s.Check
	if check == "" {
		check = "/"
	}
	in.set("MF_SLOT_CHECK", check)
	in.set("MF_SLOT_PORT", strconv.Itoa(s.Port))
	in.set("MF_SLOT_TIMEOUT", seconds(s.startTimeout()))
	in.set("MF_SLOT_DRAIN", seconds(s.drainTimeout()))
	in.set("MF_SLOT_PY", slotCheckPy)
	return in
}

// slotResult reads the slot line a start or a switch prints: the slot
// serving for the dir made live, and the one that served for the previous
// dir.
func slotResult(out *scriptOutput, p *Prepared) {
	if f := out.result("slot"); len(f) == 2 {
		p.Slot, p.PrevSlot = f[0], f[1]
	}
}

// startSlot starts a new slot of the prepared dir on its host, beside the
// live one, and waits until it answers (hostsh/slotup.sh); the lock is
// held since prepare. A slot that fails to start is stopped again, and
// the error holds its last log lines.
func startSlot(ctx context.Context, p *Prepared, o *Options) error {
	var in vars
	in.set("MF_DIR", p.Dir)
	in.set("MF_PREV", p.Previous)
	out, err := part{files: []string{"lock", "slot", "slotup"}, in: in}.run(ctx, p.Host, o, false)
	if err != nil {
		return scriptError(p.Host, "starting the new slot", out, err, o)
	}
	slotResult(out, p)
	return nil
}

// slotRef names a slot of a release dir on a host.
type slotRef struct{ Dir, Slot string }

// stopSlot drains a slot on h (hostsh/slotdrain.sh), unless it serves at
// that moment. It does not need the lock: it stops only the slot it is
// told of.
func stopSlot(ctx context.Context, h sshx.Host, o *Options, s slotRef) error {
	var in vars
	in.list("MF_DRAIN", []string{s.Dir, s.Slot})
	out, err := part{files: []string{"slot", "slotdrain"}, in: in}.run(ctx, h, o, false)
	if err != nil {
		return scriptError(h, "draining", out, err, o)
	}
	return nil
}

// startSlots starts the new slot of every prepared host (front mode),
// all or none: if one fails, those started are stopped again.
func (f *Fleet) startSlots(ctx context.Context, prepared []*Prepared) error {
	if !f.Options.front() {
		return nil
	}
	f.say("starting the new slot on %d host(s)", len(prepared))
	hosts := make([]sshx.Host, len(prepared))
	byHost := map[string]*Prepared{}
	for i, p := range prepared {
		hosts[i] = p.Host
		byHost[p.Host.Name()] = p
	}
	limit := f.switchTimeout() + f.Options.Slots.startTimeout()
	res, err := sshx.Each(ctx, hosts, f.Parallel, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		return struct{}{}, startSlot(ctx, byHost[h.Name()], f.Options)
	})
	if err == nil {
		return nil
	}
	var started []*Prepared
	for _, r := range res {
		if r.Err == nil {
			started = append(started, byHost[r.Host.Name()])
		}
	}
	f.stopNew(started)
	return err
}

// stopNew stops the new slot of each of prepared, which serves nowhere:
// a deploy that does not switch leaves only the slots that served.
func (f *Fleet) stopNew(prepared []*Prepared) {
	f.stopEach(prepared, func(p *Prepared) (slotRef, bool) {
		return slotRef{p.Dir, p.Slot}, p.Slot != ""
	}, "", "a new slot that serves nowhere could not be stopped (deploy:status shows it)")
}

// drainOld drains, once every host switched and passed the check, the
// slot each host served with before: it finishes its requests and exits.
// A slot that does not drain is a warning: the release is live.
func (f *Fleet) drainOld(prepared []*Prepared) {
	if f.Options.Slots == nil {
		return
	}
	f.stopEach(prepared, func(p *Prepared) (slotRef, bool) {
		return slotRef{p.Previous, p.PrevSlot}, p.PrevSlot != "" && p.Previous != "" && !(p.Previous == p.Dir && p.PrevSlot == p.Slot)
	}, "draining the previous slot", "the new release is live, but a previous slot did not drain (deploy:status shows it)")
}

// stopEach drains, on the host of each of prepared, the slot pick names
// (if it names one), all hosts in parallel, within a drain and a switch
// timeout even after an interrupt; progress, unless "", is said first. A
// failure is told to Warn, after why.
func (f *Fleet) stopEach(prepared []*Prepared, pick func(*Prepared) (slotRef, bool), progress, why string) {
	var hosts []sshx.Host
	slot := map[string]slotRef{}
	for _, p := range prepared {
		if ref, ok := pick(p); ok {
			hosts = append(hosts, p.Host)
			slot[p.Host.Name()] = ref
		}
	}
	if len(hosts) == 0 {
		return
	}
	if progress != "" {
		f.say("%s on %d host(s)", progress, len(hosts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.Options.Slots.drainTimeout()+f.switchTimeout())
	defer cancel()
	_, err := sshx.Each(ctx, hosts, f.Parallel, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		return struct{}{}, stopSlot(ctx, h, f.Options, slot[h.Name()])
	})
	if err != nil {
		f.warn(fmt.Errorf("%s: %w", why, err))
	}
}

// warn tells Warn of err, or prints it.
func (f *Fleet) warn(err error) {
	if f.Warn != nil {
		f.Warn(err)
		return
	}
	f.say("%v", err)
}
