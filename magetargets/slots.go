package magetargets

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
)

// Slots runs each release dir as processes of its own ("slots") instead
// of restarting the app: a deploy starts the new release's slot beside the
// one serving, moves the traffic to it only once it answers, and drains
// the old one once every host switched and passed its check. No request
// fails while the fleet switches, and switching back (a failure anywhere,
// or deploy:rollback) moves the traffic back to a slot that still runs.
// Zero Start keeps the classic RestartCommand switch.
//
// Traffic reaches the slots one of two ways. With Port 0 (front mode) a
// server on the host, such as nginx, proxies to the socket
// <Path>/<ReleasesRoot>/<CurrentLink>/run/app.sock: magefab keeps each
// release dir's run/app.sock a symlink to the socket of its serving slot,
// and since connect() follows the links at each connection, pointing
// current elsewhere is the move, atomic and without a reload. With Port
// set, the slots listen together on that TCP port (SO_REUSEPORT: gunicorn
// --reuse-port, Tornado reuse_port=True), and on their own socket for the
// check; a deploy then starts the new slot in the switch (it gets traffic
// as soon as it listens), and old and new slots serve side by side until
// the old ones drain.
//
// Start, Stop and Logs are text/templates over SlotData, shell command
// lines run like RestartCommand (with sudo unless NoSudo, from the login
// directory). The fields are substituted as quoted shell variable
// expansions ("$MAGEFAB_SLOT", ...), whose values the command gets in its
// environment: so write them as shell words, outside single quotes.
type Slots struct {
	// Start starts a slot in the background and returns once it started,
	// e.g. "systemctl start five@{{.Slot}}" or
	// "/etc/init.d/five-slot start {{.Dir}} {{.Slot}}". The slot listens
	// on {{.Socket}} (and on Port, when set).
	Start string
	// Stop drains a slot: it stops accepting, finishes the requests in
	// flight within DrainTimeout ($MAGEFAB_DRAIN_TIMEOUT seconds), exits,
	// and Stop returns once it exited. A slot that does not run is no
	// error.
	Stop string
	// Logs prints a slot's last log lines, shown when a slot does not
	// start. Empty means "tail -n 20 {{.Dir}}/run/{{.Slot}}.log".
	Logs string
	// Check is the path a started slot must answer over HTTP on its
	// socket, with a status below 400, within StartTimeout. Empty means
	// "/".
	Check string
	// Port is the TCP port the slots share; 0 means front mode.
	Port int
	// StartTimeout bounds the wait for a started slot to answer; zero
	// means 30s. DrainTimeout is what a slot has to drain; zero means 30s.
	StartTimeout, DrainTimeout time.Duration
}

// SlotData is what the commands of Slots are rendered over.
type SlotData struct {
	Unit    string // Config.Unit
	Slot    string // the slot's name: its release dir's (a), or the dir's and .1 (a.1) for a second slot of the dir
	Release string // the release dir's name (a)
	Dir     string // the release dir, absolute (/var/webapps/five/releases/a)
	Socket  string // the slot's own socket: {{.Dir}}/run/{{.Slot}}.sock
	Port    int    // Slots.Port
}

// slotShellData renders each field of SlotData but Unit and Port as the
// shell variable the command gets it in.
func (c Config) slotShellData() SlotData {
	return SlotData{
		Unit:    c.Unit,
		Slot:    `"$MAGEFAB_SLOT"`,
		Release: `"$MAGEFAB_SLOT_RELEASE"`,
		Dir:     `"$MAGEFAB_SLOT_DIR"`,
		Socket:  `"$MAGEFAB_SLOT_SOCKET"`,
		Port:    c.Slots.Port,
	}
}

// slotOptions renders Slots for release.Options; nil without slots.
func (c Config) slotOptions() (*release.Slots, error) {
	s := c.Slots
	if s.Start == "" {
		return nil, nil
	}
	out := &release.Slots{Check: s.Check, Port: s.Port, StartTimeout: s.StartTimeout, DrainTimeout: s.DrainTimeout}
	for _, f := range []struct {
		name, tmpl string
		dest       *string
	}{
		{"Start", s.Start, &out.Start},
		{"Stop", s.Stop, &out.Stop},
		{"Logs", s.Logs, &out.Logs},
	} {
		if f.tmpl == "" {
			continue
		}
		cmd, err := c.renderSlot(f.name, f.tmpl)
		if err != nil {
			return nil, fmt.Errorf("magetargets: Config.Slots.%s %s: %w", f.name, shown(f.tmpl), err)
		}
		*f.dest = cmd
	}
	return out, nil
}

func (c Config) renderSlot(name, text string) (string, error) {
	return renderCommand(name, text, c.slotShellData())
}

// checkSlots adds what is wrong with Slots to p.
func (c Config) checkSlots(p *problems) {
	s := c.Slots
	if s == (Slots{}) {
		return
	}
	const example = `e.g. Slots{Start: "/etc/init.d/{{.Unit}}-slot start {{.Dir}} {{.Slot}}", Stop: "/etc/init.d/{{.Unit}}-slot stop {{.Dir}} {{.Slot}}"}`
	if s.Start == "" {
		p.addf("Slots.Start", "is empty while other Slots fields are set; give the command that starts a slot (%s), or leave Slots empty for the RestartCommand switch", example)
		return
	}
	if s.Stop == "" {
		p.addf("Slots.Stop", "is empty; give the command that drains a slot, %s", example)
	}
	for _, f := range []struct{ name, tmpl string }{{"Start", s.Start}, {"Stop", s.Stop}, {"Logs", s.Logs}} {
		if f.tmpl == "" {
			continue
		}
		if _, err := c.renderSlot(f.name, f.tmpl); err != nil {
			p.addf("Slots."+f.name, "%s: %v; give a text/template over SlotData (Unit, Slot, Release, Dir, Socket, Port), %s", shown(f.tmpl), err, example)
		}
	}
	if s.Check != "" && (!strings.HasPrefix(s.Check, "/") || badText(s.Check) != "" || strings.ContainsAny(s.Check, " \t")) {
		p.addf("Slots.Check", "%s is not a URL path; give the path a started slot answers, e.g. /version", shown(s.Check))
	}
	if s.Port < 0 || s.Port > 65535 {
		p.addf("Slots.Port", "is %d; give the TCP port the slots share (1 to 65535), or 0 for a front server on the host", s.Port)
	}
	if s.StartTimeout < 0 || s.StartTimeout > time.Hour {
		p.addf("Slots.StartTimeout", "is %s; give how long a started slot has to answer, e.g. 30s (0 means 30s)", s.StartTimeout)
	}
	if s.DrainTimeout < 0 || s.DrainTimeout > time.Hour {
		p.addf("Slots.DrainTimeout", "is %s; give how long a slot has to drain, e.g. 30s (0 means 30s)", s.DrainTimeout)
	}
}

// slotLine says, for deploy:status, which slots of a release dir run and
// which one holds the traffic.
func slotLine(st release.HostStatus, s release.SlotState) string {
	running := "no slot running"
	if len(s.Running) > 0 {
		running = "running " + strings.Join(s.Running, ", ")
	}
	switch {
	case s.Serving == "":
		return fmt.Sprintf("slots of %s: %s", s.Dir, running)
	case s.Dir == st.State.Current && slices.Contains(s.Running, s.Serving):
		return fmt.Sprintf("slots of %s: %s; %s holds the traffic", s.Dir, running, s.Serving)
	case s.Dir == st.State.Current:
		return fmt.Sprintf("slots of %s: %s; %s should hold the traffic but does not answer: maint:restart starts a new one", s.Dir, running, s.Serving)
	}
	return fmt.Sprintf("slots of %s: %s", s.Dir, running)
}
