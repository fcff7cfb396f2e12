package release

import (
	"os"
	"os/user"
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
	Env          []string // NAME=value for every remote command, e.g. DEPLOYMENT_TYPE=PRODUCTION
	Sudo         bool     // privileged steps run with sudo -n
	Group        string   // group owning the deploy root, e.g. deploy
	Restart      string   // shell command that restarts the app; "" restarts nothing
	// Slots, when not nil, runs each release dir as processes of its
	// own and switches traffic between them instead of restarting (see
	// Slots): Restart is not used then.
	Slots    *Slots
	LockWait time.Duration
	// LockLease is how long a lock stays its holder's without a
	// heartbeat: the run holding a lock refreshes it on every host while
	// it works (and so does the detached part of an interrupted switch),
	// and a lock silent for longer is taken over by the next run, which
	// says so. Zero means 2 minutes.
	LockLease time.Duration
	// LockStale is no longer used: a lock is stale when its lease
	// (LockLease) expired.
	LockStale time.Duration
	// Holder says who holds the locks this run takes; its zero value
	// means CurrentHolder().
	Holder       Holder
	Owner        string   // who deploys, written into the lock and the log: "alice@laptop"
	RunID        string   // identifies this run's locks: Unlock removes only a lock with this id
	ForwardAgent bool     // forward the SSH agent to git on the hosts (clone and fetch over SSH); never while they prepare with PushFrom
	Crontab      string   // crontab file in the release dir installed after each switch; "" none
	CrontabUser  string   // whose crontab, e.g. deploy
	Services     []string // init scripts restarted after the app on each switch, e.g. /etc/init.d/celeryd-five_PRODUCTION
	ExtraStamp   string   // mixed into the requirements stamp, e.g. a hash of private package archives

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

	// PushFrom, when not empty, is a local git repository (a work tree
	// or a bare one, with its whole history) that holds the release: as
	// each host prepares, this machine sends it the commits it misses,
	// over the host's SSH connection, in the prepare phase's one session
	// (a thin git bundle of the release without the commits the host
	// names; a whole one for a host with none). The hosts then never
	// reach SCM (which only becomes their clones' origin): they need no
	// credentials for it, no agent forwarding (ForwardAgent is not used
	// while they prepare) and no network. Submodules are not sent: a
	// release with submodules still has the hosts fetch those from their
	// own URLs. Empty means each host fetches from SCM (pull).
	PushFrom string

	onLock func(host string) // called when a script has taken the lock on host
	leases *leaseKeeper      // the run's sessions and held locks, while a Fleet keeps their leases
	xfer   *transfer         // a Deploy's download slots and bundles, while it runs (Fleet.transfers)

	Console *sshx.Console // progress lines; nil prints nothing
	Verbose bool          // also show the tools' own output

	// Progress, if not nil, is told where each host is in a Fleet's
	// operation, for a live display: as it waits for, begins and ends
	// each phase, and each step its scripts report. It is called from
	// many goroutines at once, and must return quickly. Console gets the
	// same steps as lines (Console.Progress) either way.
	Progress func(Event)
}

// Event is where a host is in a Fleet's operation, told to
// Options.Progress.
type Event struct {
	// Host is the host's name; "" for a phase of the whole fleet
	// (PhaseAfterPrepare, PhaseVerify).
	Host  string
	Phase string // one of the Phase constants; "" for an EventStep
	State EventState
	Step  string // with EventStep: what the host's script says it does now
	Err   error  // with EventFailed: why
}

// EventState is what an Event says of its host in its phase.
type EventState int

const (
	EventWaiting EventState = iota // is to begin the phase, after others (see Fleet.Parallel)
	EventStarted                   // began the phase
	EventStep                      // says what it does now (Event.Step)
	EventDone                      // ended the phase
	EventFailed                    // failed the phase (Event.Err)
)

// The phases of a Fleet's operations, in their order.
const (
	// PhasePrepare: each host takes its lock and gets ready to switch.
	// For a deploy, it fetches the release and installs its
	// requirements (and runs Fleet.PerHost); for a rollback, it checks
	// the release it goes back to.
	PhasePrepare = "prepare"
	// PhaseAfterPrepare is Fleet.AfterPrepare, once for the fleet.
	PhaseAfterPrepare = "after prepare"
	// PhaseSwitch: each host makes its release live and restarts.
	PhaseSwitch = "switch"
	// PhaseVerify is Fleet.Verify, once for the fleet.
	PhaseVerify = "verify"
	// PhaseSwitchBack: after a failure, the hosts that switched are put
	// back on the release they served.
	PhaseSwitchBack = "switch back"
	// PhaseUnlock: after a failure, this run's locks are released.
	PhaseUnlock = "unlock"
)

// progress tells o.Progress of e, if it is set.
func (o *Options) progress(e Event) {
	if o.Progress != nil {
		o.Progress(e)
	}
}

// ended is the Event that host ended phase with err: EventDone or EventFailed.
func ended(host, phase string, err error) Event {
	if err != nil {
		return Event{Host: host, Phase: phase, State: EventFailed, Err: err}
	}
	return Event{Host: host, Phase: phase, State: EventDone}
}

// waiting tells o.Progress that each of hosts is to begin phase.
func (o *Options) waiting(phase string, hosts []sshx.Host) {
	if o.Progress == nil {
		return
	}
	for _, h := range hosts {
		o.Progress(Event{Host: h.Name(), Phase: phase, State: EventWaiting})
	}
}

func (o *Options) sudo() string {
	if o.Sudo {
		return "sudo -n "
	}
	return ""
}

// DefaultLockLease is the lease of a lock when Options.LockLease is zero.
const DefaultLockLease = 2 * time.Minute

func (o *Options) lockLease() time.Duration {
	if o.LockLease <= 0 {
		return DefaultLockLease
	}
	return o.LockLease
}

// holder is o.Holder, or CurrentHolder() for its zero value.
func (o *Options) holder() Holder {
	if o.Holder == (Holder{}) {
		return CurrentHolder()
	}
	return o.Holder
}

// Holder says who holds a deploy lock and how to reach them: it is written
// into the lock, and a run refused by the lock, or taking it over, names
// it.
type Holder struct {
	User    string // the login name
	Machine string // the hostname of the deploying machine
	PID     int    // the deploying process
	Job     string // the CI job's URL, "" when not run by a CI job
}

// CurrentHolder describes this process: the user (os/user, else $USER),
// the hostname, the process id and, from the usual CI variables, the job's
// URL: CI_JOB_URL (GitLab), GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/
// runs/GITHUB_RUN_ID (GitHub Actions), BUILD_URL (Jenkins).
func CurrentHolder() Holder {
	h := Holder{PID: os.Getpid(), Job: ciJobURL(os.Getenv)}
	if u, err := user.Current(); err == nil && u.Username != "" {
		h.User = u.Username
	} else {
		h.User = os.Getenv("USER")
	}
	if h.User == "" {
		h.User = "unknown"
	}
	if m, err := os.Hostname(); err == nil && m != "" {
		h.Machine = m
	} else {
		h.Machine = "unknown"
	}
	return h
}

// ciJobURL is the URL of the CI job running this process, from the
// variables the usual CI services set; "" when none says one.
func ciJobURL(getenv func(string) string) string {
	if u := getenv("CI_JOB_URL"); u != "" {
		return u
	}
	if s, r, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"); s != "" && r != "" && id != "" {
		return strings.TrimSuffix(s, "/") + "/" + r + "/actions/runs/" + id
	}
	return getenv("BUILD_URL")
}
