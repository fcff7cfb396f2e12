// Package magetargets is a library of Mage targets that deploy Python web
// applications over SSH with the "a/b release directories" method: each
// host keeps two clones of the repository, Path/releases/a and b, and a
// symlink, current, to the live one; a deploy prepares the other one and
// switches the link.
//
// # Use
//
// Import the package into the project's magefile and configure it once:
//
//	//go:build mage
//
//	package main
//
//	import (
//		// mage:import
//		"github.com/magefab/magefab/magetargets"
//	)
//
//	func init() {
//		magetargets.Configure(magetargets.Config{
//			Unit:            "five",
//			SCM:             "git@github.com:bueda/five.git",
//			PipRequirements: []string{"requirements/common.txt"},
//			Environments: map[string]magetargets.Environment{
//				"production": {Hosts: []string{"web1", "web2"}},
//			},
//		})
//	}
//
// then run the targets, e.g. go tool mage -l, or
//
//	go tool mage env:production deploy:tag v0.1.1
//
// Configure only records the configuration; it is checked when a target
// runs, and an error names every field that is wrong.
//
// # Environments
//
// The targets env:localhost, env:development, env:staging and
// env:production select the environment for the targets after them on
// the same command line. The four are built in; Config.Environments merges
// fields over them and adds new ones. Mage cannot add an env:* target for
// an environment added at run time, so select those with MAGEFAB_ENV:
//
//	Environments: map[string]magetargets.Environment{
//		"qa": {Hosts: []string{"qa1"}, AllowNoTag: true}, // Name "qa", DeploymentType "QA"
//	},
//
//	MAGEFAB_ENV=qa go tool mage deploy:head
//
// The environment is the one an env:* target selected, else MAGEFAB_ENV,
// else Config.DefaultEnvironment; with none of them a target that needs an
// environment fails and lists the choices.
//
// # Options
//
// Options that are not positional arguments are environment variables, the
// Mage convention; each has a constant and an accessor (see EnvVar and the
// constants after it):
//
//	MAGEFAB_ENV=qa                  the environment, when no env:* target ran
//	MAGEFAB_HOSTS=web1,web2         these hosts instead of the environment's
//	MAGEFAB_TAG=v1.2.3              the new release tag; also answers yes to "Tag this release?"
//	MAGEFAB_YES=1                   yes to every confirmation, and every suggested answer
//	MAGEFAB_SKIP_TESTS=1            deploy without running the tests
//	MAGEFAB_DRY_RUN=1               show what a deploy or deploy:rollback would do, change nothing
//	MAGEFAB_REINSTALL=1             install the requirements even if they look up to date
//	MAGEFAB_PARALLEL=8              hosts worked on at once
//	MAGEFAB_FETCH_LIMIT=8           hosts downloading from the git server or package index at once (0: no limit)
//	MAGEFAB_DELIVERY=push           push the release to the hosts over SSH, or pull it from SCM
//	MAGEFAB_LOCK_WAIT=90s           wait this long for a held deploy lock
//	MAGEFAB_LOCK_LEASE=2m           a lock silent this long is taken over (overrides Config.LockLease)
//	MAGEFAB_NO_AUTO_ROLLBACK=1      keep a release whose version check failed
//
// A question, such as the new release tag, is asked on the terminal; when
// stdin is not a terminal, the variable that answers it must be set, and
// the error says which.
//
// MAGEFAB_DRY_RUN=1 makes deploy:head, deploy:commit, deploy:tag and
// deploy:rollback inspect the hosts and print, per host, the dir current
// would point to, the release and the commands, changing nothing (the
// tests still run). The targets that have nothing to preview (deploy:unlock,
// maint:*, pip:install, pip:setup) refuse to run while it is set.
//
// # Releases
//
// Servers only ever get what is on the git remote (Config.Remote): a deploy
// first pushes the current branch when it is ahead of the remote (behind or
// diverged is an error; a detached HEAD pushes nothing), and any revision
// that is not on the remote is refused. In an environment that
// requires tagged releases (AllowNoTag false, as in production), deploying
// HEAD or a commit tags it as a new release, created with git tag -a (or -s
// with Config.SignTags) and pushed; a rerun with the same MAGEFAB_TAG reuses
// the tag if it points at the same commit.
//
// # Failures and interrupts
//
// A deploy prepares every host before any switches, and a host that fails
// to switch has the others switched back (package release does the work).
// An error says which target or setting acts on it: a held deploy lock
// names MAGEFAB_LOCK_WAIT and deploy:unlock, a refused rollback the
// deploy:tag or deploy:commit of the release to go back to, and a fleet
// that could not be switched back whole says what each host serves and the
// command that reunites it; mage then exits with status 77.
//
// The targets that work on hosts treat SIGTERM (a CI runner cancelling a
// job, systemd, kill) and SIGHUP (a closed terminal or SSH session) as
// Ctrl-C: the run's context is cancelled, the remote commands stop, the
// run's locks are released within seconds, and mage exits with status
// 128+the signal's number, as a shell reports a process a signal ended:
// 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP (77 still wins when the
// fleet is split). A run that has not stopped 15 seconds after the signal
// exits anyway (mage's own limit for Ctrl-C, 5 seconds, may come first),
// and a second Ctrl-C exits at once. While the hosts switch
// (and the new release is checked), SIGINT, SIGTERM and SIGHUP do not stop
// mage: each is reported, and the switch finishes, or every host is
// switched back, first; then they stop the run again.
//
// The deploy lock on each host is a lease: the run holding it refreshes
// it while it works, and a lock silent for longer than Config.LockLease
// (MAGEFAB_LOCK_LEASE; 2 minutes by default) is taken over by the next
// run, which names its holder. A lock names its holder's user, machine,
// process, release, start, last heartbeat and CI job. deploy:unlock
// removes a lock at once; it asks first when the lock's lease is still
// fresh (MAGEFAB_YES=1 answers yes; without a terminal and without it,
// it refuses).
//
// # Without mage
//
// NewFleet builds, from a Config and an environment, the release.Fleet
// that the targets deploy with, for a program that deploys without mage.
package magetargets
