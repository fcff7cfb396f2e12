package magetargets

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/notify"
	"github.com/magefab/magefab/sshx"
)

// recentTags is how many release tags the tagging dialogue shows.
const recentTags = 10

// resolver works out what a deploy deploys, on this machine, before any
// host is touched: it pushes what the servers need to the remote, finds
// the commit, and tags it as a release where the environment wants one.
type resolver struct {
	cfg    Config      // validated
	env    Environment // the environment deployed to
	git    release.Git // the project's repository
	prompt *prompter   // asks for tags and confirmations
	out    io.Writer   // progress for the user
	dryRun bool        // push nothing, tag nothing: say what would be done
	// preview, when set, shows what would go live if the commit sha
	// (called name) were deployed; the resolver calls it before it asks
	// to tag a release, so that the question comes with the answer.
	preview func(ctx context.Context, sha, name string)
}

// newResolver returns the resolver the deploy targets use: the repository
// at c.RootDir, the package's prompter, progress to out.
func newResolver(c Config, e Environment, out io.Writer) resolver {
	// git writes its stdout and stderr from two goroutines.
	gitOut := sshx.NewSyncWriter(out)
	return resolver{
		cfg:    c,
		env:    e,
		git:    release.Git{Dir: c.RootDir, Remote: c.Remote, Stdout: gitOut, Stderr: gitOut},
		prompt: prompts,
		out:    out,
	}
}

// resolveTag resolves deploy:tag: an existing release tag, whose commit
// must be on the remote once the current branch is pushed.
func (r resolver) resolveTag(ctx context.Context, tag string) (release.Target, error) {
	re, err := r.pattern()
	if err != nil {
		return release.Target{}, err
	}
	if err := release.ValidateTag(tag, re); err != nil {
		return release.Target{}, err
	}
	if err := r.pushCurrent(ctx); err != nil {
		return release.Target{}, err
	}
	sha, exists, err := r.git.TagCommit(ctx, tag)
	if err != nil {
		return release.Target{}, err
	}
	if !exists {
		return release.Target{}, fmt.Errorf("magetargets: no tag %s here or on %s: list the releases with git tag --list, or make a new one with deploy:head or deploy:commit", tag, r.remote())
	}
	if err := r.mustBeOnRemote(ctx, sha, "tag "+tag, "git push "+r.remote()+" "+tag); err != nil {
		return release.Target{}, err
	}
	return release.Target{Name: tag, SHA: sha, Tag: tag}, nil
}

// resolveCommit resolves deploy:commit: a commit on the remote once the
// current branch is pushed. Where the
// environment requires tagged releases it is tagged as a new one; elsewhere
// it is deployed untagged.
func (r resolver) resolveCommit(ctx context.Context, sha string) (release.Target, error) {
	if err := release.ValidateCommit(sha); err != nil {
		return release.Target{}, err
	}
	if err := r.pushCurrent(ctx); err != nil {
		return release.Target{}, err
	}
	full, err := r.git.ResolveCommit(ctx, sha)
	if err != nil {
		return release.Target{}, err
	}
	if err := r.mustBeOnRemote(ctx, full, "commit "+sha, "push the branch that has it (git push "+r.remote()+" <branch>)"); err != nil {
		return release.Target{}, err
	}
	if !r.env.AllowNoTag {
		if r.preview != nil {
			r.preview(ctx, full, sha)
		}
		return r.tagRelease(ctx, full)
	}
	return r.untagged(ctx, full)
}

// resolveHead resolves deploy:head. It first pushes the current branch
// when it is ahead of the remote, as every deploy does. Where the environment requires tagged
// releases, HEAD must be on the environment's Branch, and the user is asked
// whether to tag it as a new release; if not, the latest release is
// deployed. Elsewhere the environment's DefaultRevision, or HEAD, is
// deployed untagged.
func (r resolver) resolveHead(ctx context.Context) (release.Target, error) {
	branch, detached, err := r.git.CurrentBranch(ctx)
	if err != nil {
		return release.Target{}, err
	}
	tagged := !r.env.AllowNoTag
	rev := "HEAD"
	if !tagged && r.env.DefaultRevision != "" {
		rev = r.env.DefaultRevision
		if err := release.ValidateRevision(rev); err != nil {
			return release.Target{}, fmt.Errorf("magetargets: Environments[%q].DefaultRevision: %w", r.env.Name, err)
		}
	}
	if rev == "HEAD" && r.env.Branch != "" && (detached || branch != r.env.Branch) {
		where := "branch " + branch
		if detached {
			where = "a detached HEAD"
		}
		return release.Target{}, fmt.Errorf("magetargets: environment %s deploys HEAD only from branch %s, and you are on %s: git checkout %s first, or deploy a release with deploy:tag",
			r.env.Name, r.env.Branch, where, r.env.Branch)
	}
	if err := r.pushBranch(ctx, branch, detached); err != nil {
		return release.Target{}, err
	}

	if tagged {
		if r.preview != nil {
			if sha, err := r.git.ResolveCommit(ctx, rev); err == nil {
				r.preview(ctx, sha, rev)
			}
		}
		yes, err := r.prompt.confirm(ctx, "Tag this release?", TagVar)
		if err != nil {
			return release.Target{}, err
		}
		if !yes {
			return r.latestRelease(ctx)
		}
	}
	sha, err := r.git.ResolveCommit(ctx, rev)
	if err != nil {
		return release.Target{}, err
	}
	if err := r.mustBeOnRemote(ctx, sha, rev, "push it to "+r.remote()); err != nil {
		return release.Target{}, err
	}
	if tagged {
		return r.tagRelease(ctx, sha)
	}
	return r.untagged(ctx, sha)
}

// pushCurrent is step 2 of every deploy: the servers only ever see what
// is on the remote, so the current branch is pushed to it when it is ahead;
// behind or diverged is an error that says so, and a detached HEAD pushes
// nothing. The remote is fetched in any case.
func (r resolver) pushCurrent(ctx context.Context) error {
	branch, detached, err := r.git.CurrentBranch(ctx)
	if err != nil {
		return err
	}
	return r.pushBranch(ctx, branch, detached)
}

// pushBranch is pushCurrent once the current branch is known. A dry run
// pushes nothing: it says what it would push.
func (r resolver) pushBranch(ctx context.Context, branch string, detached bool) error {
	switch {
	case detached:
		return r.git.Fetch(ctx)
	case r.dryRun:
		need, err := r.git.NeedsPush(ctx, branch)
		if need {
			fmt.Fprintf(r.out, "Dry run: would push %s to %s.\n", branch, r.remote())
		}
		return err
	}
	pushed, err := r.git.PushIfAhead(ctx, branch)
	if pushed {
		fmt.Fprintf(r.out, "Pushed %s to %s.\n", branch, r.remote())
	}
	return err
}

// tagRelease is the tagging dialogue: it shows the recent releases, asks
// for the new tag (suggesting the next patch version; MAGEFAB_TAG answers),
// then creates the tag on sha and pushes it. A tag that already points at
// sha, as on a rerun after a failed deploy, is reused.
func (r resolver) tagRelease(ctx context.Context, sha string) (release.Target, error) {
	re, err := r.pattern()
	if err != nil {
		return release.Target{}, err
	}
	releases, err := r.releases(ctx, re)
	if err != nil {
		return release.Target{}, err
	}
	suggest := release.FirstVersion
	if len(releases) == 0 {
		fmt.Fprintln(r.out, "No releases yet.")
	} else {
		fmt.Fprintln(r.out, "Recent releases, newest first:")
		for _, t := range releases[:min(len(releases), recentTags)] {
			fmt.Fprintln(r.out, "  "+t)
		}
		suggest = release.NextPatch(releases[0])
	}
	if release.ValidateTag(suggest, re) != nil {
		suggest = "" // a custom VersionPattern the suggestion does not fit
	}
	tag, err := r.prompt.ask(ctx, "New release tag", suggest, TagVar)
	if err != nil {
		return release.Target{}, err
	}
	if err := release.ValidateTag(tag, re); err != nil {
		if ReleaseTag() != "" {
			return release.Target{}, fmt.Errorf("magetargets: %s: %w", TagVar, err)
		}
		return release.Target{}, err
	}

	existing, exists, err := r.git.TagCommit(ctx, tag)
	switch {
	case err != nil:
		return release.Target{}, err
	case exists && existing != sha:
		return release.Target{}, fmt.Errorf("magetargets: tag %s already exists and points at %s, not at %s, the commit being deployed: choose a new tag, or deploy %s itself with deploy:tag %s",
			tag, short(existing), short(sha), tag, tag)
	case exists:
		fmt.Fprintf(r.out, "Tag %s already points at %s: reusing it.\n", tag, short(sha))
	case r.dryRun:
		fmt.Fprintf(r.out, "Dry run: would tag %s as %s and push the tag.\n", short(sha), tag)
		return release.Target{Name: tag, SHA: sha, Tag: tag}, nil
	default:
		if err := r.git.CreateTag(ctx, tag, sha, "", r.cfg.SignTags); err != nil {
			return release.Target{}, err
		}
		fmt.Fprintf(r.out, "Tagged %s as %s.\n", short(sha), tag)
	}
	// Pushing a tag the remote already has is a no-op; it repairs a
	// previous run whose push failed after the tag was created.
	if !r.dryRun {
		if err := r.git.PushTag(ctx, tag); err != nil {
			return release.Target{}, err
		}
	}
	return release.Target{Name: tag, SHA: sha, Tag: tag}, nil
}

// latestRelease is the newest release tag, for "no, do not tag this
// release".
func (r resolver) latestRelease(ctx context.Context) (release.Target, error) {
	re, err := r.pattern()
	if err != nil {
		return release.Target{}, err
	}
	releases, err := r.releases(ctx, re)
	if err != nil {
		return release.Target{}, err
	}
	if len(releases) == 0 {
		return release.Target{}, fmt.Errorf("magetargets: no release to deploy: no tag matches VersionPattern %s; answer yes to tag this release (or set %s=%s), or deploy a tag with deploy:tag",
			re, TagVar, release.FirstVersion)
	}
	tag := releases[0]
	sha, _, err := r.git.TagCommit(ctx, tag)
	if err != nil {
		return release.Target{}, err
	}
	if err := r.mustBeOnRemote(ctx, sha, "tag "+tag, "git push "+r.remote()+" "+tag); err != nil {
		return release.Target{}, err
	}
	fmt.Fprintf(r.out, "Deploying the latest release, %s.\n", tag)
	return release.Target{Name: tag, SHA: sha, Tag: tag}, nil
}

// untagged names sha with git describe, for environments that deploy
// untagged commits.
func (r resolver) untagged(ctx context.Context, sha string) (release.Target, error) {
	if ReleaseTag() != "" {
		fmt.Fprintf(r.out, "Note: %s is set, but environment %s deploys without tagging; it is not used.\n", TagVar, r.env.Name)
	}
	name, err := r.git.Describe(ctx, sha)
	if err != nil {
		return release.Target{}, err
	}
	// The name comes from the repository's tags, which may hold characters
	// a release name must not (git allows '$', quotes, ';' and more).
	if release.ValidateTag(name, anyName) != nil {
		fmt.Fprintf(r.out, "Note: git describe names %s %s, which is not usable as a release name; deploying it as %s.\n", short(sha), shown(name), short(sha))
		name = short(sha)
	}
	return release.Target{Name: name, SHA: sha}, nil
}

// anyName is a VersionPattern that every name matches.
var anyName = regexp.MustCompile(``)

// releases returns the local tags that are valid release tags (they match
// re, and release.ValidateTag accepts them), newest first.
func (r resolver) releases(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	tags, err := r.git.Tags(ctx)
	if err != nil {
		return nil, err
	}
	var releases []string
	for _, t := range tags {
		if release.ValidateTag(t, re) == nil {
			releases = append(releases, t)
		}
	}
	release.SortVersions(releases)
	return releases, nil
}

// mustBeOnRemote fails unless the commit sha, called what, is on the
// remote, where the servers get it; how says how to put it there.
func (r resolver) mustBeOnRemote(ctx context.Context, sha, what, how string) error {
	ok, err := r.git.OnRemote(ctx, sha)
	if err != nil {
		return err
	}
	if !ok && r.dryRun {
		// A dry run did not push the current branch; the deploy would.
		if branch, detached, err := r.git.CurrentBranch(ctx); err == nil && !detached {
			if ok, err = r.git.OnBranch(ctx, sha, branch); err != nil {
				return err
			}
		}
	}
	if !ok {
		return fmt.Errorf("magetargets: %s (%s) is not on %s, and the servers only get what is there: %s, then deploy again", what, short(sha), r.remote(), how)
	}
	return nil
}

func (r resolver) pattern() (*regexp.Regexp, error) {
	return release.CompileVersionPattern(r.cfg.VersionPattern)
}

func (r resolver) remote() string {
	if r.cfg.Remote == "" {
		return release.DefaultRemote
	}
	return r.cfg.Remote
}

// short abbreviates a commit id for messages.
func short(sha string) string {
	return release.Target{SHA: sha}.Short()
}

// maxLiveCommits caps the commit list of "what goes live".
const maxLiveCommits = 20

// liveChange is what a production deploy changes: the commits between
// what the hosts serve and the release.
type liveChange struct {
	env     string         // the deployment type, e.g. PRODUCTION
	from    release.Target // what the hosts serve; zero when nothing is live
	to      release.Target // the release
	hosts   string         // when the hosts serve different releases, which serves what
	known   bool           // this repository has from's commit
	adds    []string       // git log --oneline from..to, newest first, capped
	addsAll int            // how many commits from..to holds
	drops   []string       // git log --oneline to..from: commits that leave (an older release)
	dropAll int
	compare string // the compare URL, "" without SCMWebURL
}

// write prints c, the "what goes live" of a production deploy.
func (c liveChange) write(w io.Writer) {
	to := liveName(c.to)
	switch {
	case c.from.SHA == "":
		fmt.Fprintf(w, "What goes live on %s: %s; nothing is live there yet.\n", c.env, to)
		return
	case c.from.SHA == c.to.SHA:
		fmt.Fprintf(w, "What goes live on %s: nothing new; the hosts serve %s already.\n", c.env, to)
		return
	}
	from := liveName(c.from)
	if c.hosts != "" {
		from += " (" + c.hosts + ")"
	}
	if !c.known {
		fmt.Fprintf(w, "What goes live on %s: %s -> %s; this repository does not have %s (git fetch gets it), so its commits are not listed.\n",
			c.env, from, to, c.from.Short())
	} else {
		fmt.Fprintf(w, "What goes live on %s: %s -> %s, %d new commit(s)", c.env, from, to, c.addsAll)
		if c.dropAll > 0 {
			fmt.Fprintf(w, ", %d commit(s) leave", c.dropAll)
		}
		fmt.Fprintln(w, ":")
		list := func(prefix string, lines []string, all int) {
			for _, l := range lines {
				fmt.Fprintf(w, "  %s%s\n", prefix, l)
			}
			if more := all - len(lines); more > 0 {
				fmt.Fprintf(w, "  %s... and %d more\n", prefix, more)
			}
		}
		list("+ ", c.adds, c.addsAll)
		list("- ", c.drops, c.dropAll)
	}
	if c.compare != "" {
		fmt.Fprintf(w, "  %s\n", c.compare)
	}
}

// liveName names a release for "what goes live": v0.1.1 (6b4943c).
func liveName(t release.Target) string {
	name := t.Name
	if name == "" || name == t.SHA {
		return t.Short()
	}
	if short := t.Short(); short != "" && !strings.Contains(name, short) {
		return name + " (" + short + ")"
	}
	return name
}

// whatGoesLive works out the liveChange of deploying to (see liveChange)
// from what the hosts serve, live: distinct releases in host order, each
// with the hosts that serve it ("web1, web2"). A repository it cannot read
// leaves the commit lists empty.
func whatGoesLive(ctx context.Context, c Config, env string, live []servedRelease, to release.Target) liveChange {
	ch := liveChange{env: env, to: to}
	if len(live) == 0 {
		return ch
	}
	ch.from = live[0].Target
	if len(live) > 1 {
		var parts []string
		for _, l := range live {
			parts = append(parts, liveName(l.Target)+" on "+l.hosts)
		}
		ch.hosts = "the hosts differ: " + strings.Join(parts, "; ")
	}
	if sameCommit(ch.from.SHA, to.SHA) {
		ch.from.SHA = to.SHA
		return ch
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", c.RootDir}, args...)...)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := git("cat-file", "-e", ch.from.SHA+"^{commit}"); err != nil {
		return ch
	}
	ch.known = true
	commits := func(rng string) ([]string, int) {
		n, err := git("rev-list", "--count", rng)
		all, _ := strconv.Atoi(n)
		if err != nil || all == 0 {
			return nil, 0
		}
		out, err := git("log", "--oneline", "--no-decorate", "--no-color", "--max-count="+strconv.Itoa(maxLiveCommits), rng)
		if err != nil {
			return nil, all
		}
		return strings.Split(out, "\n"), all
	}
	ch.adds, ch.addsAll = commits(ch.from.SHA + ".." + to.SHA)
	ch.drops, ch.dropAll = commits(to.SHA + ".." + ch.from.SHA)
	fromRef, toRef := ch.from.Name, to.Name
	if fromRef == "" {
		fromRef = ch.from.SHA
	}
	if toRef == "" || toRef == "HEAD" {
		toRef = to.SHA
	}
	ch.compare = notify.CompareURL(c.SCMWebURL, fromRef, toRef)
	return ch
}

// servedRelease is a release the hosts serve, and which of them do.
type servedRelease struct {
	release.Target
	hosts string
}

// servedReleases returns what the hosts serve, from their release dirs
// (one session each), in host order; nil when nothing is live anywhere.
// Hosts that cannot be inspected are left out.
func (r *fleetRun) servedReleases(ctx context.Context) []servedRelease {
	var out []servedRelease
	index := map[string]int{}
	for _, st := range r.fleet.Status(ctx, 0) {
		if st.Err != nil || st.State.Current == "" {
			continue
		}
		d, ok := st.State.Dir(st.State.Current)
		if !ok || d.Head == "" {
			continue
		}
		if i, seen := index[d.Head]; seen {
			out[i].hosts += ", " + st.Host
			continue
		}
		index[d.Head] = len(out)
		out = append(out, servedRelease{Target: release.Target{Name: d.Describe, SHA: d.Head}, hosts: st.Host})
	}
	return out
}

// previewer returns the resolver's preview for a production deploy (nil
// elsewhere): it prints what goes live, once per commit. It asks the hosts
// what they serve (a session each) when someone will read it before
// anything happens, in a dry run or at a terminal question; otherwise it
// uses what VersionURL answered before the deploy (live), and prints
// nothing when that is unknown.
func (r *fleetRun) previewer(dry bool, live string) func(ctx context.Context, sha, name string) {
	if r.env.DeploymentType != deployProduction {
		return nil
	}
	shown := ""
	return func(ctx context.Context, sha, name string) {
		if sha == shown {
			return
		}
		shown = sha
		var served []servedRelease
		switch {
		case dry || r.willAsk():
			served = r.servedReleases(ctx)
		case live != "":
			served = []servedRelease{{Target: release.Target{Name: live, SHA: live}, hosts: "VersionURL"}}
		default:
			return
		}
		whatGoesLive(ctx, r.cfg, r.env.DeploymentType, served, release.Target{Name: name, SHA: sha}).write(stdout)
	}
}

// willAsk reports whether the tagging question will be put to a person:
// stdin is a terminal and neither MAGEFAB_TAG nor MAGEFAB_YES answers it.
func (r *fleetRun) willAsk() bool {
	if yes, _ := Yes(); yes || ReleaseTag() != "" {
		return false
	}
	return prompts.IsTerminal()
}

// sameCommit reports whether two commit ids, either abbreviated, name one
// commit.
func sameCommit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return a != "" && strings.HasPrefix(b, a)
}
