package release

import (
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
	LockWait     time.Duration
	LockStale    time.Duration // a lock older than this is reported as stale; zero means 1h
	Owner        string        // who deploys, written into the lock and the log: "alice@laptop"
	RunID        string        // identifies this run's locks: Unlock removes only a lock with this id
	ForwardAgent bool          // forward the SSH agent to git on the hosts (clone and fetch over SSH)
	Crontab      string        // crontab file in the release dir installed after each switch; "" none
	CrontabUser  string        // whose crontab, e.g. deploy
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

	onLock func(host string) // called when a script has taken the lock on host

	Console *sshx.Console // progress lines; nil prints nothing
	Verbose bool          // also show the tools' own output
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
