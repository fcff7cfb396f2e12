package magetargets

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// onHosts wraps errs as the fleet reports its hosts' failures.
func onHosts(errs ...error) error {
	var me *multierror.Error
	for i, err := range errs {
		me = multierror.Append(me, &sshx.HostError{Host: fmt.Sprintf("web%d", i+1), Err: err})
	}
	return me.ErrorOrNil()
}

// TestAdviseNamesTheTargets checks that each of release's typed errors
// reads, for a mage user, with the targets and settings that act on it,
// wherever it sits in the error, and that the error stays what it was.
func TestAdviseNamesTheTargets(t *testing.T) {
	t.Parallel()
	sha := "6b4943c0123456789abcdef0123456789abcdef0"
	v1 := release.Target{Name: "v0.1.0", SHA: sha, Tag: "v0.1.0"}
	untagged := release.Target{Name: "v0.1.0-3-g6b4943c", SHA: sha}
	held := &release.LockedError{Host: "web1", Owner: "alice@desk deploying v0.0.9", Since: time.Now().Add(-time.Minute)}
	stale := &release.LockedError{Host: "web1", Owner: "bob@laptop", Since: time.Now().Add(-3 * time.Hour), Stale: true}
	unknown := &release.SwitchError{Host: "web2", Reason: "the connection was lost", Serving: "unknown"}
	split := func(previous ...release.Target) *release.SplitError {
		return &release.SplitError{
			What: "the switch failed", Split: true, Previous: previous,
			Serving: []release.HostServing{
				{Host: "web1", Release: "v0.1.0", Dir: "a", Note: "the previous release: switched back"},
				{Host: "web2", Note: "unknown: its switch was stopped, and it is still switching back by itself"},
			},
			Err: onHosts(unknown),
		}
	}
	for _, c := range []struct {
		name    string
		err     error
		mage    string
		want    []string
		notWant []string
	}{
		{"a held lock", fmt.Errorf("deploy of v0.1.1 to PRODUCTION failed: no host was switched: %w", onHosts(held)), "mage env:production",
			[]string{"deploy of v0.1.1 to PRODUCTION failed: no host was switched: ",
				"release: web1: locked by alice@desk deploying v0.0.9 since ", " (1m0s ago); wait for that deploy, set MAGEFAB_LOCK_WAIT=90s to wait for it, or if it died: mage env:production deploy:unlock"},
			[]string{"ForceUnlock", "LockWait waits"}},
		{"a stale lock", onHosts(stale), "MAGEFAB_ENV=qa mage",
			[]string{"release: web1: stale lock: held by bob@laptop since ", "; if no deploy is running there, clear it with: MAGEFAB_ENV=qa mage deploy:unlock"},
			[]string{"ForceUnlock"}},
		{"a split fleet", fmt.Errorf("deploy of v0.1.1 to PRODUCTION failed: %w", split(v1)), "mage env:production",
			[]string{"the switch failed; THE FLEET IS SPLIT: some hosts could not be switched back.\nwhat each host serves now:\n  web1: v0.1.0 in a (the previous release: switched back)\n  web2: unknown: its switch was stopped, and it is still switching back by itself (check with deploy:status)\n",
				"to bring every host back to v0.1.0, mend what failed above, then run (each host reuses the dir that holds it):\n  mage env:production deploy:tag v0.1.0\ndeploy:status shows each host\ncause: ",
				"switch: the connection was lost (what web2 serves is unknown: check with deploy:status)"},
			[]string{"Fleet.Status", "deploy it again"}},
		{"a split fleet on an untagged release", split(untagged), "MAGEFAB_ENV=qa mage",
			[]string{"to bring every host back to v0.1.0-3-g6b4943c, mend what failed above, then run (each host reuses the dir that holds it):\n  MAGEFAB_ENV=qa mage deploy:commit " + sha + "\n"}, nil},
		{"a split fleet on different releases", split(v1, release.Target{Name: "v0.0.9", SHA: "1234567", Tag: "v0.0.9"}), "mage env:production",
			[]string{"the hosts served different releases before; to reunite the fleet, mend what failed above, then deploy one release to every host, e.g.:\n  mage env:production deploy:tag v0.1.0\n  mage env:production deploy:tag v0.0.9\ndeploy:status shows each host"}, nil},
		{"a rollback to a release that never went live", fmt.Errorf("rollback of PRODUCTION failed: no host was rolled back: %w",
			onHosts(&release.NeverLiveError{Dir: "/var/webapps/five/releases/a", Release: release.Target{Name: "v0.3.0", SHA: sha}, Before: v1})), "mage env:production",
			[]string{"/var/webapps/five/releases/a holds v0.3.0, which never went live there", "; to go back to v0.1.0, the release live before, deploy it instead: mage env:production deploy:tag v0.1.0"}, nil},
		{"a rollback to a release that never went live, nothing known before", onHosts(&release.NeverLiveError{Dir: "/srv/a", Release: untagged}), "mage env:staging",
			[]string{"; deploy the release to go back to instead (mage env:staging deploy:tag <tag> or mage env:staging deploy:commit <commit>)"}, nil},
		{"a lock left behind", fmt.Errorf("pip install failed: %w", onHosts(&release.UnlockError{Host: "web1", Err: errors.New("unlock: connection lost")})), "mage env:production",
			[]string{"* web1: unlock: connection lost (mage env:production deploy:unlock clears the lock)"}, []string{"ForceUnlock"}},
	} {
		got := advise(c.err, c.mage)
		for _, want := range c.want {
			if !strings.Contains(got.Error(), want) {
				t.Errorf("%s: advised error lacks %q:\n%v", c.name, want, got)
			}
		}
		for _, bad := range c.notWant {
			if strings.Contains(got.Error(), bad) {
				t.Errorf("%s: advised error still says %q:\n%v", c.name, bad, got)
			}
		}
		if !errors.Is(got, c.err) {
			t.Errorf("%s: the advised error does not wrap the original", c.name)
		}
	}

	plain := errors.New("release: no hosts to deploy to")
	if got := advise(plain, "mage env:production"); got != plain {
		t.Errorf("advise(%v) = %v, want it unchanged", plain, got)
	}
	if advise(nil, "mage") != nil {
		t.Errorf("advise(nil) is not nil")
	}
}

// TestAdviseNamesTheLockHolder checks the lock errors for a lock that says
// who holds it: user, machine, process, release, start, last heartbeat and
// CI job, and the lease: when it expires, or how long the holder has been
// silent when it has expired; today's advice stays.
func TestAdviseNamesTheLockHolder(t *testing.T) {
	t.Parallel()
	now := time.Now()
	since := now.Add(-10 * time.Minute)
	fresh := &release.LockedError{Host: "web1", Owner: "carol@ci-7 deploying v0.9.0", Release: "v0.9.0", Since: since,
		User: "carol", Machine: "ci-7", PID: "4242", Job: "https://ci.example/jobs/9", Beat: now.Add(-20 * time.Second), Lease: 2 * time.Minute}
	dead := &release.LockedError{Host: "web2", Owner: "dave@laptop deploying v0.8.0", Release: "v0.8.0", Since: since,
		User: "dave", Machine: "laptop", PID: "77", Beat: now.Add(-3 * time.Minute), Lease: 2 * time.Minute, Stale: true}
	old := &release.LockedError{Host: "web3", Owner: "erin@desk", Since: since, Machine: "desk", PID: "99", Lease: 30 * time.Minute}
	for _, c := range []struct {
		name    string
		err     *release.LockedError
		want    []string
		notWant []string
	}{
		{"a fresh lease", fresh, []string{
			"release: web1: locked by carol@ci-7 deploying v0.9.0 since " + since.Format(time.RFC3339) + " (10m0s ago); holder: carol on ci-7, pid 4242, deploying v0.9.0, CI job https://ci.example/jobs/9; last heartbeat 20s ago, lease expires in 1m40s; ",
			"wait for that deploy, set MAGEFAB_LOCK_WAIT=90s to wait for it, or if it died: mage env:production deploy:unlock (or let the next deploy take it over once its lease has expired)"},
			[]string{"stale", "ForceUnlock"}},
		{"an expired lease", dead, []string{
			"release: web2: stale lock: held by dave@laptop deploying v0.8.0 since " + since.Format(time.RFC3339) + " (10m0s ago); holder: dave on laptop, pid 77, deploying v0.8.0; silent for 3m0s (lease expired: the next deploy takes it over); if no deploy is running there, clear it with: mage env:production deploy:unlock"},
			[]string{"CI job", "lease expires", "ForceUnlock"}},
		{"a lock without a heartbeat", old, []string{
			"release: web3: locked by erin@desk since " + since.Format(time.RFC3339) + " (10m0s ago); holder: on desk, pid 99; no heartbeat, lease expires in 20m0s; wait for that deploy"},
			[]string{"last heartbeat"}},
	} {
		got := advise(onHosts(c.err), "mage env:production").Error()
		for _, want := range c.want {
			if !strings.Contains(got, want) {
				t.Errorf("%s: advised error lacks %q:\n%s", c.name, want, got)
			}
		}
		for _, bad := range c.notWant {
			if strings.Contains(got, bad) {
				t.Errorf("%s: advised error says %q:\n%s", c.name, bad, got)
			}
		}
	}
}

// TestSplitExitStatus checks that a split fleet, advised, still makes mage
// exit with 77.
func TestSplitExitStatus(t *testing.T) {
	t.Parallel()
	err := splitExit(advise(fmt.Errorf("deploy failed: %w", &release.SplitError{What: "the switch failed", Split: true, Err: errors.New("boom")}), "mage env:production"))
	if mg.ExitStatus(err) != 77 || !strings.Contains(err.Error(), "deploy:status shows each host") {
		t.Errorf("splitExit = %v (exit status %d), want the advised text and 77", err, mg.ExitStatus(err))
	}
}
