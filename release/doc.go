// Package release deploys a Python web app's releases to a fleet of hosts
// over SSH, all or nothing: a Fleet prepares the release on every host,
// and only when every host has prepared does any switch to it; a host that
// fails to switch has the others switched back.
//
// It knows releases, hosts and locks, not a command line: its errors are
// typed and carry what a caller needs to act (a *LockedError names the
// lock's holder, a *SplitError what each host serves and the release that
// reunites the fleet), and it leaves the process's signal handling to its
// caller (see Fleet.Switching). The Mage targets of package magetargets
// are one such caller; a program can build a Fleet on its own.
//
// # The a/b layout
//
// Each host keeps two clones of the app's repository, the release dirs
// (Layout.Dirs, "a" and "b"), each with its own virtualenv, and a symlink
// to the live one (Layout.Current):
//
//	/var/webapps/five/releases/
//	    a/               v0.1.0, with its virtualenv in env/
//	    b/               v0.1.1
//	    current -> b
//	    revisions.log    one line per switch: when, who, which release, to which dir
//	    .lock/           the deploy lock, while a run works on the host
//
// A deploy prepares the dir current does not point to (or reuses the one
// that already holds the release): git fetch and checkout of the commit,
// then the virtualenv's requirements, installed only when their stamp (a
// hash of the interpreter, the install command and the requirement files)
// changed. The switch renames a new symlink
// over current, restarts the app and runs the after-switch steps
// (Options.Crontab, Options.Staged, Options.Services). A rollback points
// current back at the other dir, if the release there went live once.
//
// # The lock
//
// A deploy, a rollback and a reinstall (ReinstallLive) hold each host's
// deploy lock from their first step to their last: a directory, built
// under a temporary name and renamed into place (atomic), which holds who
// took it (Options.Holder: user, machine, process, CI job), when, for
// which release, the run's id (Options.RunID) and its last heartbeat. A
// second run meets it and fails with a *LockedError, or waits up to
// Options.LockWait. Two runs started at once meet at the fleet's first
// host, so that they never split the fleet's locks between them.
//
// The lock is a lease: while a run holds it, the script working on the
// host refreshes its heartbeat, and so does the run between phases over
// its connection (only for a host with no session for a third of the
// lease); a lock silent for longer than Options.LockLease (its run died,
// or lost its network) is taken over by the next run, which says whose it
// was. A live holder is never taken over, however long it works. Every
// removal or take-over renames the lock aside first and checks, in what
// it renamed, that it is the lock it meant to remove (putting back one
// that is not): a run removes only its own lock, even a run's detached
// part finishing long after. ForceUnlock removes anyone's; a lock left by
// a run of this machine whose process is gone is taken over at once.
//
// # Host scripts
//
// A host is worked on with one POSIX shell script per phase (prepare,
// switch, switch back, rollback check, status), so that a phase costs one
// SSH session on the connection its sshx.Host keeps. The scripts are
// embedded in the package (hostsh/), and every input they get is quoted
// for the shell. A script answers on stdout with
// lines that begin with "magefab:" ("magefab:step" for progress,
// "magefab:error" for why it failed, and tab-separated results); every
// other line is a tool's own output, shown with Options.Verbose. Besides 0
// and 1, a script's exit status says how it left its host: 75 the lock is
// held by someone else, 76 the restart failed and the host was switched
// back, 77 switching back failed too, 78 the host was switched back but an
// after-switch step could not be undone. *SplitError reports 77 as its
// ExitStatus, for a caller that exits with it.
//
// # Pull, push and download slots
//
// A host gets a release's commits from Options.SCM (pull), or, with
// Options.PushFrom, from the deploying machine: its prepare script names
// the commits it holds, and gets back on its standard input a thin git
// bundle of what it misses, in the same session. The same channel gives
// out Fleet.FetchLimit download slots across the fleet: a host waits for
// one before it clones or fetches from SCM, or installs requirements.
//
// # Input
//
// Every value that comes from a user (a tag, a commit, a unit name, a file
// name) is checked by one of the Validate functions before it reaches git,
// a host or a shell; a rejected value is reported as an *InputError. Git
// runs the local git operations a deploy needs.
package release
