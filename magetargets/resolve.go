package magetargets

import (
	"context"
	"fmt"
	"io"
	"regexp"

	"github.com/magefab/magefab/release"
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
