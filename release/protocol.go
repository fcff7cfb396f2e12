package release

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/magefab/magefab/sshx"
)

// A host is worked on with one shell script per phase, so that a phase
// costs one SSH session. Scripts speak back on stdout with lines that
// start with "magefab:"; everything else is the output of the tools they
// run (git, pip, the restart command).

// exit codes of the scripts, beyond 0 and 1
const (
	exitLocked      = 75 // the lock is held by someone else
	exitRestartFail = 76 // the restart failed; the host was switched back
	exitCompFail    = 77 // the restart failed, and switching back failed too
	exitUndoFail    = 78 // switched back and restarted, but an after-switch step could not be undone
)

// scriptOutput parses what a script prints: magefab: lines become results
// and progress steps, the rest is tool output shown live in verbose mode.
// The tail of everything is kept for error messages.
type scriptOutput struct {
	host     string
	console  *sshx.Console
	verbose  bool
	onLock   func(host string) // called as soon as the script says it holds the lock
	leases   *leaseKeeper      // told when the script takes or releases the lock
	progress func(Event)       // told of each step; nil for none
	onAsk    func([]string)    // told of each ask and ungate line (talk.sh); nil for none

	mu      sync.Mutex
	partial []byte
	results [][]string // fields of each magefab: line other than step and error
	errors  []string
	tail    []string
}

func (o *scriptOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	return len(p), nil
}

func (o *scriptOutput) line(l string) {
	rest, ok := strings.CutPrefix(l, "magefab:")
	if !ok {
		o.tail = append(o.tail, l)
		if len(o.tail) > 20 {
			o.tail = o.tail[1:]
		}
		if o.verbose && o.console != nil {
			o.console.Progress(o.host, "  "+l)
		}
		return
	}
	switch {
	case strings.HasPrefix(rest, "step "):
		o.say(strings.TrimPrefix(rest, "step "))
	case strings.HasPrefix(rest, "error "):
		o.errors = append(o.errors, strings.TrimPrefix(rest, "error "))
	default:
		f := strings.Split(rest, "\t")
		o.results = append(o.results, f)
		if rest == "lock" && o.onLock != nil {
			o.onLock(o.host)
		}
		if o.leases != nil && (rest == "lock" || rest == "unlocked") {
			o.leases.hold(o.host, rest == "lock")
		}
		if (f[0] == "ask" || f[0] == "ungate") && o.onAsk != nil {
			o.onAsk(f)
		}
		if f[0] == "takeover" {
			// A warning: shown even where steps are not.
			if o.console != nil {
				o.console.Println(o.host, time.Now().Format("15:04:05")+" "+takeoverLine(f[1:]))
			}
		}
	}
}

// say reports a step: to the console, and to the progress hook.
func (o *scriptOutput) say(msg string) {
	if o.console != nil {
		o.console.Progress(o.host, time.Now().Format("15:04:05")+" "+msg)
	}
	if o.progress != nil {
		o.progress(Event{Host: o.host, State: EventStep, Step: msg})
	}
}

// result returns the fields after the key of the first result line with
// that key, or nil.
func (o *scriptOutput) result(key string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.results {
		if r[0] == key {
			return r[1:]
		}
	}
	return nil
}

// all returns every result line with key.
func (o *scriptOutput) all(key string) [][]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out [][]string
	for _, r := range o.results {
		if r[0] == key {
			out = append(out, r[1:])
		}
	}
	return out
}

// failure describes why a script failed: its own error lines, else the
// tail of the tools' output.
func (o *scriptOutput) failure(err error) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	tail := o.tail
	if len(tail) > 3 {
		tail = tail[len(tail)-3:]
	}
	msg := err.Error()
	if len(o.errors) > 0 {
		msg = strings.Join(o.errors, "; ")
	}
	if len(tail) > 0 {
		return msg + ": " + strings.Join(tail, " | ")
	}
	return msg
}
