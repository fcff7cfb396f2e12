package magetargets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/release"
)

// TestMain isolates git from the configuration of whoever runs the tests
// (no global or system config, a fixed identity, a scratch HOME) and the
// targets from their MAGEFAB_* settings.
func TestMain(m *testing.M) {
	os.Exit(runIsolated(m))
}

func runIsolated(m *testing.M) int {
	cleanup, err := testenv.IsolateGit()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	for _, k := range allVars {
		os.Unsetenv(k)
	}
	// No colour in what the tests read, even when they run on a terminal.
	os.Setenv("NO_COLOR", "1")
	return m.Run()
}

// allVars are the variables the targets read.
var allVars = []string{EnvVar, HostsVar, TagVar, YesVar, SkipTestsVar, DryRunVar, ReinstallVar, ParallelVar, LockWaitVar, LockLeaseVar, NoAutoRollbackVar}

// git runs git in dir and fails the test if it fails.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return testenv.Git(t, dir, args...)
}

// repos is a bare "remote" repository and a clone of it with one pushed
// commit on master, tagged v0.1.0 on the remote.
type repos struct {
	remote, clone string
	initial       string // SHA of the first commit
}

func newRepos(t *testing.T) repos {
	t.Helper()
	r := testenv.NewRepos(t)
	rs := repos{remote: r.Remote, clone: r.Clone, initial: r.Initial}
	git(t, rs.clone, "tag", "-a", "-m", "first", "v0.1.0")
	git(t, rs.clone, "push", "-q", "origin", "v0.1.0")
	return rs
}

// commit makes an empty commit in dir and returns its SHA.
func commit(t *testing.T, dir, msg string) string {
	t.Helper()
	return testenv.Commit(t, dir, msg)
}

// remoteTag returns the commit tag points at in the bare remote, "" when
// it has no such tag.
func (r repos) remoteTag(t *testing.T, tag string) string {
	t.Helper()
	out, err := exec.Command("git", "--git-dir", r.remote, "rev-parse", "--verify", "--quiet", "refs/tags/"+tag+"^{commit}").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// resolver returns a resolver for the clone in environment env, whose
// prompter reads input and has a terminal when terminal is true.
func (r repos) resolver(env string, input string, terminal bool) (resolver, *bytes.Buffer) {
	c := withDefaults(Config{Unit: "five", SCM: r.remote, RootDir: r.clone})
	out := new(bytes.Buffer)
	return resolver{
		cfg:    c,
		env:    c.Environments[env],
		git:    release.Git{Dir: r.clone, Remote: c.Remote},
		prompt: &prompter{In: strings.NewReader(input), Out: out, IsTerminal: func() bool { return terminal }},
		out:    out,
	}, out
}

func wantTarget(t *testing.T, call string, got release.Target, err error, want release.Target) {
	t.Helper()
	if err != nil || got != want {
		t.Errorf("%s = %+v, %v, want %+v, nil", call, got, err, want)
	}
}

func wantErr(t *testing.T, call string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil error, want one containing %q", call, parts)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s = %v, want an error containing %q", call, err, p)
		}
	}
}

func TestResolveTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	res, _ := r.resolver(envProduction, "", false)

	got, err := res.resolveTag(ctx, "v0.1.0")
	wantTarget(t, `resolveTag("v0.1.0")`, got, err, release.Target{Name: "v0.1.0", SHA: r.initial, Tag: "v0.1.0"})

	_, err = res.resolveTag(ctx, "v9.9.9")
	wantErr(t, `resolveTag("v9.9.9")`, err, "no tag v9.9.9", "git tag --list")

	// A tag that exists here only, on a commit of a branch that is not
	// checked out: nothing pushes it.
	git(t, r.clone, "checkout", "-q", "-b", "side")
	unpushed := commit(t, r.clone, "unpushed")
	git(t, r.clone, "tag", "-a", "-m", "local", "v0.2.0", unpushed)
	git(t, r.clone, "checkout", "-q", "master")
	_, err = res.resolveTag(ctx, "v0.2.0")
	wantErr(t, `resolveTag("v0.2.0") of an unpushed commit`, err, "is not on origin", "git push origin v0.2.0")

	// A tag another developer pushed is fetched.
	other := filepath.Join(t.TempDir(), "other")
	git(t, filepath.Dir(other), "clone", "-q", "-b", "master", r.remote, other)
	git(t, other, "checkout", "-q", "-b", "hotfix")
	theirs := commit(t, other, "theirs")
	git(t, other, "tag", "-a", "-m", "theirs", "v0.3.0")
	git(t, other, "push", "-q", "origin", "hotfix", "v0.3.0")
	got, err = res.resolveTag(ctx, "v0.3.0")
	wantTarget(t, `resolveTag("v0.3.0") pushed from another clone`, got, err, release.Target{Name: "v0.3.0", SHA: theirs, Tag: "v0.3.0"})
}

func TestResolveTagRejectsBeforeGit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	marker := filepath.Join(dir, "x")
	c := withDefaults(Config{Unit: "five", SCM: "git@example.com:five.git"})
	// A repository that does not exist: any git call would fail with a
	// *release.GitError, not an *release.InputError.
	res := resolver{cfg: c, env: c.Environments[envProduction], git: release.Git{Dir: filepath.Join(dir, "missing")}, prompt: &prompter{}, out: new(bytes.Buffer)}
	for _, tag := range []string{
		"release-1",
		"v1;touch " + marker,
		"$(id)",
		"`id`",
		"-v1.0",
		"v1.0 ",
		"",
		"HEAD",
	} {
		_, err := res.resolveTag(ctx, tag)
		var ie *release.InputError
		if !errors.As(err, &ie) {
			t.Errorf("resolveTag(%q) = %v, want a *release.InputError", tag, err)
		}
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after resolveTag(%q): Stat(marker) = %v, want it not to exist", "v1;touch "+marker, err)
	}

	// A custom VersionPattern is the one that counts.
	res.cfg.VersionPattern = `^release-\d+$`
	if _, err := res.resolveTag(ctx, "v1.0"); err == nil || !strings.Contains(err.Error(), `VersionPattern ^release-\d+$`) {
		t.Errorf("resolveTag(%q) with VersionPattern ^release-\\d+$ = %v, want a mismatch naming the pattern", "v1.0", err)
	}
	res.cfg.VersionPattern = `^v(`
	if _, err := res.resolveTag(ctx, "v1.0"); err == nil || !strings.Contains(err.Error(), "VersionPattern") {
		t.Errorf("resolveTag(%q) with a broken VersionPattern = %v, want an error naming VersionPattern", "v1.0", err)
	}
}

func TestResolveCommitRejectsBeforeGit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := withDefaults(Config{Unit: "five", SCM: "git@example.com:five.git"})
	res := resolver{cfg: c, env: c.Environments[envDevelopment], git: release.Git{Dir: filepath.Join(t.TempDir(), "missing")}, prompt: &prompter{}, out: new(bytes.Buffer)}
	for _, sha := range []string{"", "xyz", "-abc", "$(id)", "6b4943c;id", "v1.2.3", "abc"} {
		_, err := res.resolveCommit(ctx, sha)
		var ie *release.InputError
		if !errors.As(err, &ie) {
			t.Errorf("resolveCommit(%q) = %v, want a *release.InputError", sha, err)
		}
	}
}

func TestResolveCommitDevelopment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	second := commit(t, r.clone, "second")
	git(t, r.clone, "push", "-q", "origin", "master")
	res, _ := r.resolver(envDevelopment, "", false)

	got, err := res.resolveCommit(ctx, second[:7])
	want := release.Target{Name: "v0.1.0-1-g" + second[:7], SHA: second}
	wantTarget(t, fmt.Sprintf("resolveCommit(%q) in development", second[:7]), got, err, want)
	if tags := git(t, r.clone, "tag", "--list"); tags != "v0.1.0" {
		t.Errorf("tags after resolveCommit in development = %q, want only v0.1.0", tags)
	}

	_, err = res.resolveCommit(ctx, "deadbeef")
	wantErr(t, `resolveCommit("deadbeef")`, err, `no commit "deadbeef"`)

	// A detached HEAD pushes nothing.
	git(t, r.clone, "checkout", "-q", "--detach")
	unpushed := commit(t, r.clone, "unpushed")
	_, err = res.resolveCommit(ctx, unpushed)
	wantErr(t, fmt.Sprintf("resolveCommit(%q) of an unpushed commit on a detached HEAD", unpushed), err, "is not on origin", "push the branch")
}

func TestResolveCommitProductionTags(t *testing.T) {
	ctx := context.Background()
	r := newRepos(t)
	second := commit(t, r.clone, "second")
	third := commit(t, r.clone, "third")
	git(t, r.clone, "push", "-q", "origin", "master")
	t.Setenv(TagVar, "v0.2.0")

	res, out := r.resolver(envProduction, "", false)
	got, err := res.resolveCommit(ctx, second[:7])
	wantTarget(t, "resolveCommit(second) in production with MAGEFAB_TAG=v0.2.0", got, err, release.Target{Name: "v0.2.0", SHA: second, Tag: "v0.2.0"})
	if sha := r.remoteTag(t, "v0.2.0"); sha != second {
		t.Errorf("remote tag v0.2.0 = %q, want %q (created and pushed)", sha, second)
	}
	if typ := git(t, r.clone, "cat-file", "-t", "v0.2.0"); typ != "tag" {
		t.Errorf("git cat-file -t v0.2.0 = %q, want an annotated tag", typ)
	}
	if !strings.Contains(out.String(), "Recent releases, newest first:\n  v0.1.0\n") {
		t.Errorf("output = %q, want the recent releases listed", out)
	}

	// A rerun after a failed deploy reuses the tag.
	before := git(t, r.clone, "rev-parse", "refs/tags/v0.2.0")
	res, out = r.resolver(envProduction, "", false)
	got, err = res.resolveCommit(ctx, second)
	wantTarget(t, "resolveCommit(second) again with MAGEFAB_TAG=v0.2.0", got, err, release.Target{Name: "v0.2.0", SHA: second, Tag: "v0.2.0"})
	if after := git(t, r.clone, "rev-parse", "refs/tags/v0.2.0"); after != before {
		t.Errorf("tag object after the rerun = %s, want %s, the same (reused, not recreated)", after, before)
	}
	if !strings.Contains(out.String(), "reusing it") {
		t.Errorf("output of the rerun = %q, want it to say the tag is reused", out)
	}

	// The same tag for another commit is an error, and changes nothing.
	_, err = res.resolveCommit(ctx, third)
	wantErr(t, "resolveCommit(third) with MAGEFAB_TAG=v0.2.0 on second", err, "tag v0.2.0 already exists and points at "+second[:7], "deploy:tag v0.2.0")
	if sha := r.remoteTag(t, "v0.2.0"); sha != second {
		t.Errorf("remote tag v0.2.0 after the refused deploy = %q, want %q", sha, second)
	}
}

func TestResolveCommitProductionBadTag(t *testing.T) {
	ctx := context.Background()
	r := newRepos(t)
	second := commit(t, r.clone, "second")
	git(t, r.clone, "push", "-q", "origin", "master")
	for _, tag := range []string{"v1;touch x", "$(id)", "1.2.3", "v0.2.0 v0.3.0"} {
		t.Setenv(TagVar, tag)
		res, _ := r.resolver(envProduction, "", false)
		_, err := res.resolveCommit(ctx, second)
		var ie *release.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), TagVar) {
			t.Errorf("resolveCommit with %s=%q = %v, want a *release.InputError naming %s", TagVar, tag, err, TagVar)
		}
	}
	if tags := git(t, r.clone, "tag", "--list"); tags != "v0.1.0" {
		t.Errorf("tags after refused tags = %q, want only v0.1.0", tags)
	}
}

func TestResolveCommitProductionNoTerminal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	res, _ := r.resolver(envProduction, "", false)
	_, err := res.resolveCommit(ctx, r.initial)
	wantErr(t, "resolveCommit in production without a terminal or MAGEFAB_TAG", err, "not a terminal", TagVar)
}

func TestResolveHeadProductionOffBranch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	git(t, r.clone, "checkout", "-q", "-b", "feature")
	commit(t, r.clone, "feature work")
	res, _ := r.resolver(envProduction, "", false)

	_, err := res.resolveHead(ctx)
	wantErr(t, "resolveHead() in production on branch feature", err, "only from branch master", "you are on branch feature", "git checkout master")
	if out, _ := exec.Command("git", "--git-dir", r.remote, "branch", "--list", "feature").Output(); len(out) != 0 {
		t.Errorf("remote branches after the refused deploy include feature; want nothing pushed")
	}

	git(t, r.clone, "checkout", "-q", "--detach")
	_, err = res.resolveHead(ctx)
	wantErr(t, "resolveHead() in production on a detached HEAD", err, "a detached HEAD")
}

func TestResolveHeadDevelopment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	head := commit(t, r.clone, "unpushed")
	res, out := r.resolver(envDevelopment, "", false)

	got, err := res.resolveHead(ctx)
	wantTarget(t, "resolveHead() in development", got, err, release.Target{Name: "v0.1.0-1-g" + head[:7], SHA: head})
	if remote := git(t, r.clone, "--git-dir", r.remote, "rev-parse", "master"); remote != head {
		t.Errorf("remote master after resolveHead() = %s, want %s (pushed when ahead)", remote, head)
	}
	if !strings.Contains(out.String(), "Pushed master to origin.") {
		t.Errorf("output = %q, want it to say master was pushed", out)
	}

	// A detached HEAD pushes nothing; its commit must be on the remote.
	git(t, r.clone, "checkout", "-q", "--detach")
	loose := commit(t, r.clone, "detached work")
	_, err = res.resolveHead(ctx)
	wantErr(t, "resolveHead() on an unpushed detached HEAD", err, "HEAD ("+loose[:7]+") is not on origin", "push it")
}

func TestResolveHeadBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	other := filepath.Join(t.TempDir(), "other")
	git(t, filepath.Dir(other), "clone", "-q", "-b", "master", r.remote, other)
	commit(t, other, "theirs")
	git(t, other, "push", "-q", "origin", "master")
	res, _ := r.resolver(envDevelopment, "", false)

	_, err := res.resolveHead(ctx)
	wantErr(t, "resolveHead() behind the remote", err, "behind origin/master", "git pull --rebase")
}

func TestResolveHeadDefaultRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	git(t, r.clone, "checkout", "-q", "-b", "development")
	dev := commit(t, r.clone, "on development")
	git(t, r.clone, "push", "-q", "origin", "development")
	git(t, r.clone, "checkout", "-q", "master")

	res, _ := r.resolver(envDevelopment, "", false)
	res.env.DefaultRevision = "origin/development"
	got, err := res.resolveHead(ctx)
	wantTarget(t, "resolveHead() with DefaultRevision origin/development", got, err, release.Target{Name: "v0.1.0-1-g" + dev[:7], SHA: dev})

	res.env.DefaultRevision = "$(id)"
	_, err = res.resolveHead(ctx)
	var ie *release.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "DefaultRevision") {
		t.Errorf("resolveHead() with DefaultRevision %q = %v, want a *release.InputError naming DefaultRevision", "$(id)", err)
	}
}

func TestResolveHeadProductionTagFromVar(t *testing.T) {
	ctx := context.Background()
	r := newRepos(t)
	head := commit(t, r.clone, "new work")
	t.Setenv(TagVar, "v0.1.1")
	res, out := r.resolver(envProduction, "", false)

	got, err := res.resolveHead(ctx)
	wantTarget(t, "resolveHead() in production with MAGEFAB_TAG=v0.1.1", got, err, release.Target{Name: "v0.1.1", SHA: head, Tag: "v0.1.1"})
	if sha := r.remoteTag(t, "v0.1.1"); sha != head {
		t.Errorf("remote tag v0.1.1 = %q, want %q", sha, head)
	}
	if !strings.Contains(out.String(), "Tag this release? yes (MAGEFAB_TAG is set)") {
		t.Errorf("output = %q, want MAGEFAB_TAG to answer the question", out)
	}
}

func TestResolveHeadProductionYes(t *testing.T) {
	ctx := context.Background()
	r := newRepos(t)
	head := commit(t, r.clone, "new work")
	t.Setenv(YesVar, "1")
	res, _ := r.resolver(envProduction, "", false)

	got, err := res.resolveHead(ctx)
	wantTarget(t, "resolveHead() in production with MAGEFAB_YES=1", got, err, release.Target{Name: "v0.1.1", SHA: head, Tag: "v0.1.1"})
}

func TestResolveHeadProductionTerminal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	for _, tag := range []string{"v0.0.9", "v0.1.10", "v0.1.2"} {
		git(t, r.clone, "tag", "-a", "-m", tag, tag, r.initial)
	}
	git(t, r.clone, "push", "-q", "origin", "--tags")
	head := commit(t, r.clone, "new work")

	// Yes, and accept the suggestion.
	res, out := r.resolver(envProduction, "y\n\n", true)
	got, err := res.resolveHead(ctx)
	wantTarget(t, "resolveHead() answering y, then Enter", got, err, release.Target{Name: "v0.1.11", SHA: head, Tag: "v0.1.11"})
	wantOut := "Recent releases, newest first:\n  v0.1.10\n  v0.1.2\n  v0.1.0\n  v0.0.9\nNew release tag [v0.1.11]: "
	if !strings.Contains(out.String(), wantOut) {
		t.Errorf("output = %q, want it to contain %q", out, wantOut)
	}

	// No: the latest release.
	res, _ = r.resolver(envProduction, "n\n", true)
	got, err = res.resolveHead(ctx)
	wantTarget(t, "resolveHead() answering n", got, err, release.Target{Name: "v0.1.11", SHA: head, Tag: "v0.1.11"})

	// A tag typed at the terminal is validated.
	commit(t, r.clone, "more work")
	res, _ = r.resolver(envProduction, "yes\nnot-a-version\n", true)
	_, err = res.resolveHead(ctx)
	var ie *release.InputError
	if !errors.As(err, &ie) {
		t.Errorf("resolveHead() answering yes, not-a-version = %v, want a *release.InputError", err)
	}
}

func TestResolveHeadProductionNoRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	git(t, r.clone, "tag", "-d", "v0.1.0")
	git(t, r.clone, "push", "-q", "origin", ":refs/tags/v0.1.0")
	res, _ := r.resolver(envProduction, "n\n", true)

	_, err := res.resolveHead(ctx)
	wantErr(t, "resolveHead() answering n with no release", err, "no release to deploy", "deploy:tag")

	// The first release is suggested as v0.1.0.
	res, out := r.resolver(envProduction, "y\n\n", true)
	got, err := res.resolveHead(ctx)
	wantTarget(t, "resolveHead() answering y with no release", got, err, release.Target{Name: "v0.1.0", SHA: r.initial, Tag: "v0.1.0"})
	if !strings.Contains(out.String(), "No releases yet.") {
		t.Errorf("output = %q, want it to say there is no release yet", out)
	}
}

// TestNewResolver checks the resolver the deploy targets build: the
// repository at RootDir, the configured Remote, the package's prompter.
func TestNewResolver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	git(t, r.clone, "remote", "rename", "origin", "upstream")
	c := withDefaults(Config{Unit: "five", SCM: r.remote, RootDir: r.clone, Remote: "upstream"})
	out := new(bytes.Buffer)
	res := newResolver(c, c.Environments[envProduction], out)
	if res.prompt != prompts || res.git.Dir != r.clone || res.git.Remote != "upstream" {
		t.Errorf("newResolver() = prompt %p, git %+v, want prompt %p, git in %s with remote upstream", res.prompt, res.git, prompts, r.clone)
	}
	got, err := res.resolveTag(ctx, "v0.1.0")
	wantTarget(t, `newResolver(...).resolveTag("v0.1.0")`, got, err, release.Target{Name: "v0.1.0", SHA: r.initial, Tag: "v0.1.0"})

	git(t, r.clone, "checkout", "-q", "--detach")
	unpushed := commit(t, r.clone, "unpushed")
	_, err = res.resolveCommit(ctx, unpushed)
	wantErr(t, "resolveCommit(unpushed) with remote upstream", err, "is not on upstream")
}

// TestEveryDeployPushesTheCurrentBranch checks step 2 of a deploy for
// deploy:tag and deploy:commit as for deploy:head: the current branch is
// pushed when it is ahead of the remote.
func TestEveryDeployPushesTheCurrentBranch(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		env     string
		resolve func(res resolver, head string) (release.Target, error)
		want    func(r repos, head string) release.Target
	}{
		{"deploy:tag of an older release", envProduction,
			func(res resolver, _ string) (release.Target, error) { return res.resolveTag(ctx, "v0.1.0") },
			func(r repos, _ string) release.Target {
				return release.Target{Name: "v0.1.0", SHA: r.initial, Tag: "v0.1.0"}
			}},
		{"deploy:commit of the new commit in development", envDevelopment,
			func(res resolver, head string) (release.Target, error) { return res.resolveCommit(ctx, head) },
			func(_ repos, head string) release.Target {
				return release.Target{Name: "v0.1.0-1-g" + head[:7], SHA: head}
			}},
		{"deploy:commit of the new commit in production", envProduction,
			func(res resolver, head string) (release.Target, error) { return res.resolveCommit(ctx, head) },
			func(_ repos, head string) release.Target {
				return release.Target{Name: "v0.1.1", SHA: head, Tag: "v0.1.1"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(TagVar, "v0.1.1")
			r := newRepos(t)
			head := commit(t, r.clone, "unpushed work")
			res, out := r.resolver(tc.env, "", false)
			got, err := tc.resolve(res, head)
			wantTarget(t, tc.name, got, err, tc.want(r, head))
			if remote := git(t, r.clone, "--git-dir", r.remote, "rev-parse", "master"); remote != head {
				t.Errorf("remote master = %s, want %s (pushed when ahead)", remote, head)
			}
			if !strings.Contains(out.String(), "Pushed master to origin.") {
				t.Errorf("output = %q, want it to say master was pushed", out)
			}
		})
	}
}

// TestDeployRefusesBehindOrDiverged checks that deploy:tag and
// deploy:commit, like deploy:head, refuse a current branch that is behind
// the remote or has diverged from it, and push nothing.
func TestDeployRefusesBehindOrDiverged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, diverged := range []bool{false, true} {
		r := newRepos(t)
		other := filepath.Join(t.TempDir(), "other")
		git(t, filepath.Dir(other), "clone", "-q", "-b", "master", r.remote, other)
		theirs := commit(t, other, "theirs")
		git(t, other, "push", "-q", "origin", "master")
		want := "is 1 commit(s) behind origin/master"
		if diverged {
			commit(t, r.clone, "ours")
			want = "has diverged from origin/master"
		}
		res, _ := r.resolver(envDevelopment, "", false)
		_, err := res.resolveTag(ctx, "v0.1.0")
		wantErr(t, "resolveTag() with master "+want, err, want, "git pull --rebase origin master")
		_, err = res.resolveCommit(ctx, r.initial)
		wantErr(t, "resolveCommit() with master "+want, err, want, "git pull --rebase origin master")
		if remote := git(t, r.clone, "--git-dir", r.remote, "rev-parse", "master"); remote != theirs {
			t.Errorf("remote master = %s, want %s: nothing pushed", remote, theirs)
		}
	}
}

// TestDryRunPushesNothing checks that a dry run says it would push the
// current branch, pushes nothing, and resolves the commit it would push.
func TestDryRunPushesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	head := commit(t, r.clone, "unpushed work")
	res, out := r.resolver(envDevelopment, "", false)
	res.dryRun = true
	got, err := res.resolveCommit(ctx, head)
	wantTarget(t, "resolveCommit(head) in a dry run", got, err, release.Target{Name: "v0.1.0-1-g" + head[:7], SHA: head})
	if remote := git(t, r.clone, "--git-dir", r.remote, "rev-parse", "master"); remote != r.initial {
		t.Errorf("remote master = %s after a dry run, want %s", remote, r.initial)
	}
	if !strings.Contains(out.String(), "Dry run: would push master to origin.") {
		t.Errorf("output = %q, want it to say master would be pushed", out)
	}
}

// TestResolveSignsTagsWithSignTags checks that Config.SignTags reaches the
// tag a production deploy creates: signed with the repository's SSH
// signing key and verifiable with git tag -v; without it the tag is
// annotated but unsigned.
func TestResolveSignsTagsWithSignTags(t *testing.T) {
	ctx := context.Background()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		fleettest.Unavailable(t, "ssh-keygen is not installed (Debian package openssh-client)")
	}
	r := newRepos(t)
	keys := t.TempDir()
	key := filepath.Join(keys, "signing")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "release signing", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	ident := git(t, r.clone, "var", "GIT_COMMITTER_IDENT") // "Name <email> time zone"
	email := ident[strings.Index(ident, "<")+1 : strings.Index(ident, ">")]
	os.WriteFile(filepath.Join(keys, "allowed_signers"), []byte(email+" "+string(pub)), 0o600)
	git(t, r.clone, "config", "gpg.format", "ssh")
	git(t, r.clone, "config", "user.signingkey", key)
	git(t, r.clone, "config", "gpg.ssh.allowedSignersFile", filepath.Join(keys, "allowed_signers"))

	for _, tc := range []struct {
		tag  string
		sign bool
	}{{"v0.2.0", true}, {"v0.3.0", false}} {
		sha := commit(t, r.clone, "work for "+tc.tag)
		t.Setenv(TagVar, tc.tag)
		res, _ := r.resolver(envProduction, "", false)
		res.cfg.SignTags = tc.sign
		got, err := res.resolveCommit(ctx, sha)
		wantTarget(t, fmt.Sprintf("resolveCommit() with SignTags %v", tc.sign), got, err, release.Target{Name: tc.tag, SHA: sha, Tag: tc.tag})
		out, verr := exec.Command("git", "-C", r.clone, "tag", "-v", tc.tag).CombinedOutput()
		if signed := verr == nil && strings.Contains(string(out), `Good "git" signature`); signed != tc.sign {
			t.Errorf("git tag -v %s with SignTags %v: signed = %v, want %v\n%s", tc.tag, tc.sign, signed, tc.sign, out)
		}
		if typ := git(t, r.clone, "cat-file", "-t", tc.tag); typ != "tag" {
			t.Errorf("%s is a %s, want an annotated tag", tc.tag, typ)
		}
		if r.remoteTag(t, tc.tag) != sha {
			t.Errorf("%s was not pushed", tc.tag)
		}
	}
}
