package magetargets

import (
	"context"
	"fmt"
	"strings"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/notify"
)

// notify tells the configured Notifiers about a deploy or rollback that
// succeeded. A failure is a warning: the release is live whatever a chat
// service says. live is the commit VersionURL served before, if known.
func (r *fleetRun) notify(ctx context.Context, kind string, t release.Target, res []release.HostResult, live string) {
	if len(r.cfg.Notifiers) == 0 || len(res) == 0 {
		return
	}
	// What was live: from each host's release dirs, or what VersionURL
	// served when the dirs could not say (a first deploy in a new layout).
	prev := res[0].Previous
	if live != "" && prev.SHA == "" {
		prev = release.Target{Name: live, SHA: live}
	}
	e := notify.Event{
		Kind:        kind,
		User:        strings.SplitN(r.opts.Owner, "@", 2)[0],
		Unit:        r.cfg.Unit,
		Environment: r.env.Name,
		Release:     t.Name,
		SHA:         t.SHA,
		Previous:    prev.Name,
		PreviousSHA: prev.SHA,
		Repository:  r.cfg.SCM,
		CompareURL:  notify.CompareURL(r.cfg.SCMWebURL, prev.Name, t.Name),
	}
	if branch, detached, err := (release.Git{Dir: r.cfg.RootDir}).CurrentBranch(ctx); err == nil && !detached {
		e.Branch = branch
	}
	for _, h := range res {
		e.Hosts = append(e.Hosts, h.Host)
	}
	warnings := notify.Send(ctx, r.cfg.Notifiers, e, 0)
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %v\n", w)
	}
	if sent := len(r.cfg.Notifiers) - len(warnings); sent > 0 {
		r.say("notified %d service(s)", sent)
	}
}
