package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// DefaultRemote is the git remote used when Git.Remote is empty.
const DefaultRemote = "origin"

// Git runs the git command line tool in a local repository. It never goes
// through a shell: every argument is passed to git as is. Git prompts are
// disabled (GIT_TERMINAL_PROMPT=0), so a remote that wants a password fails
// instead of hanging.
//
// A Git is a small value: copy it freely. Its methods are safe for
// concurrent use as far as git itself is.
type Git struct {
	// Dir is the repository's working directory. Empty means the current
	// directory.
	Dir string

	// Remote is the remote that mirrors what the servers clone. Empty
	// means DefaultRemote.
	Remote string

	// Stdout and Stderr receive the progress output of the commands that
	// talk to the remote (fetch, push). Nil discards it.
	Stdout, Stderr io.Writer
}

// GitError is a git command that failed.
type GitError struct {
	Args   []string // arguments after "git"
	Stderr string   // the end of what git wrote to stderr, trimmed
	Err    error    // typically an *exec.ExitError
}

func (e *GitError) Error() string {
	msg := "release: git " + quoteArgs(e.Args) + ": " + e.Err.Error()
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *GitError) Unwrap() error { return e.Err }

// ExitCode returns git's exit status, or -1 when git did not exit normally
// (not found, killed).
func (e *GitError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// CurrentBranch returns the branch HEAD is on, or detached true (and no
// branch) when HEAD is detached.
func (g Git) CurrentBranch(ctx context.Context) (branch string, detached bool, err error) {
	out, err := g.output(ctx, "symbolic-ref", "--quiet", "--short", "HEAD")
	if exitCode(err) == 1 {
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	return out, false, nil
}

// ResolveCommit returns the full SHA of the commit rev names: a tag
// (annotated tags are peeled), a SHA or a prefix of one, a branch.
func (g Git) ResolveCommit(ctx context.Context, rev string) (sha string, err error) {
	if err := notOption("revision", rev); err != nil {
		return "", err
	}
	out, err := g.output(ctx, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if exitCode(err) == 1 {
		msg := fmt.Sprintf("release: no commit %q in repo %s; check the name with git log --oneline or git tag, and fetch from %s if it is new", rev, g.dirName(), g.remote())
		var ge *GitError
		if errors.As(err, &ge) && ge.Stderr != "" {
			msg += " (git: " + ge.Stderr + ")"
		}
		return "", errors.New(msg)
	}
	if err != nil {
		return "", err
	}
	return out, nil
}

// Describe names a commit the way git describe --tags --always does: the
// tag itself when the commit is tagged (v0.1.1), else the nearest tag, the
// number of commits since and the abbreviated SHA (v0.1.0-3-g6b4943c), or
// only the abbreviated SHA when no tag is reachable.
func (g Git) Describe(ctx context.Context, sha string) (string, error) {
	if err := notOption("commit", sha); err != nil {
		return "", err
	}
	return g.output(ctx, "describe", "--tags", "--always", sha)
}

// Tags returns the names of the local tags, in git's order. Use
// SortVersions or LatestVersion to order them as releases.
func (g Git) Tags(ctx context.Context) ([]string, error) {
	out, err := g.output(ctx, "tag", "--list")
	if err != nil {
		return nil, err
	}
	return lines(out), nil
}

// TagCommit returns the commit the local tag points at, and exists false
// when there is no such tag.
func (g Git) TagCommit(ctx context.Context, tag string) (sha string, exists bool, err error) {
	if err := notOption("tag", tag); err != nil {
		return "", false, err
	}
	ref := "refs/tags/" + tag
	out, err := g.output(ctx, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if exitCode(err) == 1 {
		// Either no such tag, or a tag of something that is not a commit.
		if _, err := g.output(ctx, "rev-parse", "--verify", "--quiet", ref); err == nil {
			return "", true, fmt.Errorf("release: tag %q does not point at a commit", tag)
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return out, true, nil
}

// CreateTag creates tag on the commit sha: an annotated tag (git tag -a),
// or a signed one (git tag -s) when sign is true. An empty message means
// "Release <tag>". An existing tag is an error; see TagCommit.
func (g Git) CreateTag(ctx context.Context, tag, sha, message string, sign bool) error {
	if err := notOption("tag", tag); err != nil {
		return err
	}
	if err := notOption("commit", sha); err != nil {
		return err
	}
	if message == "" {
		message = "Release " + tag
	}
	mode := "-a"
	if sign {
		mode = "-s"
	}
	_, err := g.output(ctx, "tag", mode, "-m", message, "--", tag, sha)
	return err
}

// PushTag pushes the local tag to Remote.
func (g Git) PushTag(ctx context.Context, tag string) error {
	if err := notOption("tag", tag); err != nil {
		return err
	}
	ref := "refs/tags/" + tag
	return g.progress(ctx, "push", g.remote(), ref+":"+ref)
}

// PushBranch pushes the local branch to the branch of the same name on
// Remote. It never forces.
func (g Git) PushBranch(ctx context.Context, branch string) error {
	if err := notOption("branch", branch); err != nil {
		return err
	}
	ref := "refs/heads/" + branch
	return g.progress(ctx, "push", g.remote(), ref+":"+ref)
}

// Fetch fetches Remote's branches and tags. Remote-tracking branches that
// are gone from Remote are pruned; local tags are kept. A local tag that
// differs from Remote's tag of the same name makes Fetch fail.
func (g Git) Fetch(ctx context.Context) error {
	return g.progress(ctx, "fetch", "--prune", "--tags", g.remote())
}

// AheadBehind counts the commits the local branch has that Remote's branch
// of the same name (its remote-tracking branch) has not, and the other way
// around. It does not fetch: call Fetch first. hasUpstream is false when
// Remote has no such branch.
func (g Git) AheadBehind(ctx context.Context, branch string) (ahead, behind int, hasUpstream bool, err error) {
	if err := notOption("branch", branch); err != nil {
		return 0, 0, false, err
	}
	local, tracking := "refs/heads/"+branch, g.trackingRef(branch)
	if _, err := g.output(ctx, "rev-parse", "--verify", "--quiet", local+"^{commit}"); err != nil {
		if exitCode(err) == 1 {
			return 0, 0, false, fmt.Errorf("release: no local branch %q in repo %s", branch, g.dirName())
		}
		return 0, 0, false, err
	}
	if _, err := g.output(ctx, "rev-parse", "--verify", "--quiet", tracking+"^{commit}"); err != nil {
		if exitCode(err) == 1 {
			return 0, 0, false, nil
		}
		return 0, 0, false, err
	}
	out, err := g.output(ctx, "rev-list", "--left-right", "--count", local+"..."+tracking)
	if err != nil {
		return 0, 0, false, err
	}
	counts := strings.Fields(out)
	if len(counts) != 2 {
		return 0, 0, false, fmt.Errorf("release: unexpected output of git rev-list --count: %q", out)
	}
	if ahead, err = strconv.Atoi(counts[0]); err == nil {
		behind, err = strconv.Atoi(counts[1])
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("release: unexpected output of git rev-list --count: %q", out)
	}
	return ahead, behind, true, nil
}

// PushIfAhead makes sure Remote has what the local branch has, so that the
// servers, which clone from the remote, see the same commits. An empty
// branch means the current one; with a detached HEAD nothing is pushed.
//
// It fetches Remote, then: when the branch is ahead of Remote's, or Remote
// does not have it yet, it pushes and returns true; when it is even, it
// returns false; when it is behind or has diverged, it returns an error
// that says to run git pull --rebase.
func (g Git) PushIfAhead(ctx context.Context, branch string) (pushed bool, err error) {
	if branch == "" {
		b, detached, err := g.CurrentBranch(ctx)
		if err != nil || detached {
			return false, err
		}
		branch = b
	}
	need, err := g.NeedsPush(ctx, branch)
	if err != nil || !need {
		return false, err
	}
	if err := g.PushBranch(ctx, branch); err != nil {
		return false, err
	}
	return true, nil
}

// NeedsPush is PushIfAhead without the push: it fetches Remote and reports
// whether the local branch has commits that Remote lacks (it is ahead, or
// Remote has no such branch); behind or diverged is the error PushIfAhead
// returns.
func (g Git) NeedsPush(ctx context.Context, branch string) (bool, error) {
	if err := g.Fetch(ctx); err != nil {
		return false, err
	}
	ahead, behind, hasUpstream, err := g.AheadBehind(ctx, branch)
	if err != nil {
		return false, err
	}
	upstream := g.remote() + "/" + branch
	pull := fmt.Sprintf("run git pull --rebase %s %s, check the result, then deploy again", g.remote(), branch)
	switch {
	case hasUpstream && behind > 0 && ahead > 0:
		return false, fmt.Errorf("release: branch %s has diverged from %s (%d and %d different commits); %s", branch, upstream, ahead, behind, pull)
	case hasUpstream && behind > 0:
		return false, fmt.Errorf("release: branch %s is %d commit(s) behind %s; %s", branch, behind, upstream, pull)
	}
	return !hasUpstream || ahead > 0, nil
}

// OnBranch reports whether the commit sha is reachable from the local
// branch.
func (g Git) OnBranch(ctx context.Context, sha, branch string) (bool, error) {
	if err := notOption("commit", sha); err != nil {
		return false, err
	}
	if err := notOption("branch", branch); err != nil {
		return false, err
	}
	_, err := g.output(ctx, "merge-base", "--is-ancestor", sha, "refs/heads/"+branch)
	if exitCode(err) == 1 {
		return false, nil
	}
	return err == nil, err
}

// OnRemote reports whether the commit sha is on Remote: reachable from one
// of Remote's branches as last fetched (git branch -r --contains), or from
// a commit that one of Remote's tags points at (git ls-remote --tags) and
// that a local ref points at too, as every tag does after Fetch.
func (g Git) OnRemote(ctx context.Context, sha string) (bool, error) {
	full, err := g.ResolveCommit(ctx, sha)
	if err != nil {
		return false, err
	}
	prefix := "refs/remotes/" + g.remote() + "/"
	out, err := g.output(ctx, "branch", "-r", "--contains", full, "--format=%(refname)")
	if err != nil {
		return false, err
	}
	for _, ref := range lines(out) {
		if strings.HasPrefix(ref, prefix) {
			return true, nil
		}
	}

	// Commits that local refs containing sha point at; if Remote has a tag
	// on one of them, Remote has sha.
	out, err = g.output(ctx, "for-each-ref", "--contains", full, "--format=%(objectname) %(*objectname)")
	if err != nil || out == "" {
		return false, err
	}
	remoteTags, err := g.remoteTagCommits(ctx)
	if err != nil {
		return false, err
	}
	for _, line := range lines(out) {
		f := strings.Fields(line)
		if len(f) > 0 && remoteTags[f[len(f)-1]] {
			return true, nil
		}
	}
	return false, nil
}

// RemoteURL returns the URL of Remote (git remote get-url).
func (g Git) RemoteURL(ctx context.Context) (string, error) {
	return g.output(ctx, "remote", "get-url", "--", g.remote())
}

// User names who deploys: git's user.name, else $USER, else the login
// name of the process, else "unknown".
func (g Git) User(ctx context.Context) string {
	if name, err := g.output(ctx, "config", "user.name"); err == nil && name != "" {
		return name
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// remoteTagCommits returns the set of commits that Remote's tags point at
// (git ls-remote --tags), annotated tags peeled.
func (g Git) remoteTagCommits(ctx context.Context) (map[string]bool, error) {
	out, err := g.output(ctx, "ls-remote", "--tags", "--", g.remote())
	if err != nil {
		return nil, err
	}
	objects := map[string]string{} // ref -> object, the peeled commit when annotated
	for _, line := range lines(out) {
		sha, ref, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if tag, ok := strings.CutSuffix(ref, "^{}"); ok {
			objects[tag] = sha
		} else if _, seen := objects[ref]; !seen {
			objects[ref] = sha
		}
	}
	commits := make(map[string]bool, len(objects))
	for _, sha := range objects {
		commits[sha] = true
	}
	return commits, nil
}

func (g Git) remote() string {
	if g.Remote == "" {
		return DefaultRemote
	}
	return g.Remote
}

func (g Git) trackingRef(branch string) string {
	return "refs/remotes/" + g.remote() + "/" + branch
}

func (g Git) dirName() string {
	if g.Dir == "" {
		return "."
	}
	return g.Dir
}

// waitDelay bounds how long a git command may keep its output pipes open
// (through an ssh child, say) once it was cancelled or exited, before Wait
// gives up. The wait also starts when git exits: on a starved machine the
// copy of the last of its output took longer than 2 seconds, and a git
// command that had succeeded failed with "WaitDelay expired".
const waitDelay = 10 * time.Second

// maxStderr bounds the stderr excerpt kept in a GitError.
const maxStderr = 1024

// output runs git quietly and returns its stdout, trimmed.
func (g Git) output(ctx context.Context, args ...string) (string, error) {
	var stdout bytes.Buffer
	err := g.run(ctx, &stdout, nil, args)
	return strings.TrimSpace(stdout.String()), err
}

// progress runs git with its output also copied to g.Stdout and g.Stderr.
func (g Git) progress(ctx context.Context, args ...string) error {
	if err := notOption("remote", g.remote()); err != nil {
		return err
	}
	return g.run(ctx, g.Stdout, g.Stderr, args)
}

func (g Git) run(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.Dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	cmd.WaitDelay = waitDelay
	var errBuf bytes.Buffer
	cmd.Stdout = stdout
	cmd.Stderr = &errBuf
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(&errBuf, stderr)
	}
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return &GitError{Args: args, Stderr: excerpt(errBuf.String()), Err: err}
	}
	return nil
}

// notOption rejects a value that git would take for an option.
func notOption(field, v string) error {
	if v == "" {
		return &InputError{Field: field, Value: v, Reason: "is empty"}
	}
	if strings.HasPrefix(v, "-") {
		return &InputError{Field: field, Value: v, Reason: "starts with '-', which git would read as an option"}
	}
	return nil
}

func exitCode(err error) int {
	var ge *GitError
	if errors.As(err, &ge) {
		return ge.ExitCode()
	}
	return 0
}

// excerpt trims git's stderr and keeps its end, where the fatal message is.
func excerpt(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxStderr {
		s = "..." + s[len(s)-maxStderr:]
	}
	return s
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
