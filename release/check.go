package release

import (
	"context"
	"net/url"
	"strings"

	"github.com/magefab/magefab/sshx"
)

// CheckStatus is the outcome of one check of Fleet.Check.
type CheckStatus string

// The outcomes of a check: ok; a warning, for what works now but may
// fail later (a rollback that would be refused, a stale lock); a failure,
// for what makes a deploy fail.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// Check is one check of a host: what a deploy or a rollback needs there.
type Check struct {
	// Name says what is checked: sudo, root (the deploy root), git (the
	// way to the repository), python, restart, current, adopt (release
	// dirs deployed before magefab), crontab or lock.
	Name   string
	Status CheckStatus
	Text   string // what was found
	Fix    string // what to do about it; "" when ok
}

// HostCheck is what Fleet.Check found on a host.
type HostCheck struct {
	Host   string
	Checks []Check
	Err    error // the host could not be checked
}

// Failed reports whether the host could not be checked or failed a
// check.
func (h HostCheck) Failed() bool {
	if h.Err != nil {
		return true
	}
	for _, c := range h.Checks {
		if c.Status == CheckFail {
			return true
		}
	}
	return false
}

// Check checks every host, in one session each and changing nothing, for
// what a deploy and a rollback need there: that sudo -n runs the
// privileged steps (when Options.Sudo), that the deploy root exists and
// is writable or can be created, that git can reach Options.SCM (for an
// SSH URL: the git server's key is in the login user's known_hosts),
// that Options.Python makes virtualenvs, that the restart command's
// first word exists, where current points, the release dirs a first
// deploy would adopt (adopt, in hostsh/inspect.sh), that the crontab file is in
// the live release, and the lock.
func (f *Fleet) Check(ctx context.Context) []HostCheck {
	o := f.Options
	kind, host := scmHost(o.SCM)
	var in vars
	in.set("MF_SCM", o.SCM)
	in.set("MF_SCM_KIND", kind)
	in.set("MF_SCM_HOST", host)
	in.set("MF_GROUP", o.Group)
	in.set("MF_PYTHON", o.Python)
	in.list("MF_PIP", o.PipInstall)
	in.set("MF_RESTART", o.Restart)
	in.list("MF_SERVICES", o.Services)
	in.set("MF_CRONTAB", o.Crontab)
	in.set("MF_CRONTAB_USER", o.CrontabUser)
	script := part{files: []string{"lock", "inspect", "talk", "venv", "check"}, in: in}
	res, _ := sshx.Each(ctx, f.Hosts, f.Parallel, func(ctx context.Context, h sshx.Host) (HostCheck, error) {
		hc := HostCheck{Host: h.Name()}
		out, err := script.run(ctx, h, o, false)
		if err != nil {
			hc.Err = scriptError(h, "check", out, err, o)
			return hc, hc.Err
		}
		hc.Checks = parseChecks(out)
		return hc, nil
	})
	checks := make([]HostCheck, len(res))
	for i, r := range res {
		checks[i] = r.Value
		if checks[i].Host == "" {
			checks[i].Host = r.Host.Name()
		}
		if r.Err != nil && checks[i].Err == nil {
			checks[i].Err = r.Err
		}
	}
	return checks
}

// parseChecks reads the check results of check.sh, and makes one check
// of the release dirs adopt would adopt, in the order the script printed
// them.
func parseChecks(out *scriptOutput) []Check {
	var checks []Check
	adopted, left := out.all("adopted"), out.all("notadopted")
	for _, f := range out.all("check") {
		if len(f) < 4 {
			continue
		}
		checks = append(checks, Check{Name: f[0], Status: CheckStatus(f[1]), Text: f[2], Fix: f[3]})
		if f[0] == "current" && len(adopted) > 0 {
			checks = append(checks, adoptCheck(adopted, left))
		}
	}
	return checks
}

// adoptCheck says what the first deploy or rollback will adopt, from
// adopt's results (DIR NAME COMMIT VENV each, for the dirs adopted and
// for the one left).
func adoptCheck(adopted, left [][]string) Check {
	c := Check{Name: "adopt", Status: CheckOK}
	var dirs, unusable []string
	for _, a := range adopted {
		if len(a) < 4 {
			continue
		}
		dirs = append(dirs, a[0]+" "+a[1]+" ("+Target{SHA: a[2]}.Short()+")")
		if a[3] != "ok" {
			unusable = append(unusable, a[0]+"'s virtualenv: "+a[3])
		}
	}
	for _, a := range left {
		if len(a) >= 4 {
			unusable = append(unusable, "not "+a[0]+", which holds "+a[1]+": "+a[3])
		}
	}
	c.Text = "release dirs deployed before magefab (no revisions.log): " + strings.Join(dirs, ", ") + "; the first deploy or rollback adopts them"
	if len(unusable) > 0 {
		c.Status = CheckWarn
		c.Text += "; " + strings.Join(unusable, "; ")
		c.Fix = "a rollback to a dir without a virtualenv that runs is refused: deploy a release there first"
	}
	return c
}

// scmHost says how hosts reach the git URL scm: "ssh" with the name
// known_hosts holds the server's key under ("host", or "[host]:port" for
// another port than 22), "local" for a path on the host, or "other".
func scmHost(scm string) (kind, host string) {
	if strings.HasPrefix(scm, "/") || strings.HasPrefix(scm, "file://") {
		return "local", ""
	}
	if u, err := url.Parse(scm); err == nil && u.Scheme != "" && strings.Contains(scm, "://") {
		switch u.Scheme {
		case "ssh", "git+ssh", "ssh+git":
			if p := u.Port(); p != "" && p != "22" {
				return "ssh", "[" + u.Hostname() + "]:" + p
			}
			return "ssh", u.Hostname()
		}
		return "other", ""
	}
	// scp-like: [user@]host:path, the colon before any slash.
	i := strings.Index(scm, ":")
	if i > 0 && !strings.Contains(scm[:i], "/") {
		h := scm[:i]
		if j := strings.LastIndex(h, "@"); j >= 0 {
			h = h[j+1:]
		}
		return "ssh", strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return "local", ""
}
