package release_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/release"
)

// TestMain isolates git from the configuration of whoever runs the tests:
// no global or system config, a fixed identity, a scratch HOME.
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
	return m.Run()
}

// git runs git in dir and fails the test if it fails.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return testenv.Git(t, dir, args...)
}

// repos is a bare "remote" repository and a clone of it with one pushed
// commit on master.
type repos struct {
	remote, clone string
	initial       string // SHA of the first commit
}

func newRepos(t *testing.T) repos {
	t.Helper()
	r := testenv.NewRepos(t)
	rs := repos{remote: r.Remote, clone: r.Clone, initial: r.Initial}
	return rs
}

// anotherClone clones the remote again, as a second developer would.
func (r repos) anotherClone(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "other")
	git(t, filepath.Dir(dir), "clone", "-q", "-b", "master", r.remote, dir)
	return dir
}

// commit makes an empty commit in dir and returns its SHA.
func commit(t *testing.T, dir, msg string) string {
	t.Helper()
	return testenv.Commit(t, dir, msg)
}

func (r repos) git() release.Git { return release.Git{Dir: r.clone} }

func TestCurrentBranch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	g := r.git()

	branch, detached, err := g.CurrentBranch(ctx)
	if branch != "master" || detached || err != nil {
		t.Errorf("CurrentBranch() = %q, %v, %v, want %q, false, nil", branch, detached, err, "master")
	}

	git(t, r.clone, "checkout", "-q", "-b", "feature/x")
	branch, detached, err = g.CurrentBranch(ctx)
	if branch != "feature/x" || detached || err != nil {
		t.Errorf("CurrentBranch() = %q, %v, %v, want %q, false, nil", branch, detached, err, "feature/x")
	}

	git(t, r.clone, "checkout", "-q", "--detach")
	branch, detached, err = g.CurrentBranch(ctx)
	if branch != "" || !detached || err != nil {
		t.Errorf("CurrentBranch() on a detached HEAD = %q, %v, %v, want \"\", true, nil", branch, detached, err)
	}

	notRepo := release.Git{Dir: t.TempDir()}
	_, _, err = notRepo.CurrentBranch(ctx)
	var ge *release.GitError
	if !errors.As(err, &ge) || !strings.HasPrefix(err.Error(), "release: git symbolic-ref") || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("CurrentBranch() outside a repository = %v, want a *GitError with the command and git's message", err)
	}
}

func TestResolveCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	git(t, r.clone, "tag", "-a", "-m", "first", "v0.1.0")
	second := commit(t, r.clone, "second")
	g := r.git()

	for _, c := range []struct {
		rev, want string
	}{
		{"master", second},
		{"HEAD", second},
		{"v0.1.0", r.initial}, // an annotated tag is peeled to its commit
		{"origin/master", r.initial},
		{r.initial[:7], r.initial},
		{strings.ToUpper(r.initial), r.initial},
	} {
		got, err := g.ResolveCommit(ctx, c.rev)
		if got != c.want || err != nil {
			t.Errorf("ResolveCommit(%q) = %q, %v, want %q, nil", c.rev, got, err, c.want)
		}
	}

	for _, c := range []struct {
		rev, want string
	}{
		{"v9.9.9", `release: no commit "v9.9.9" in repo`},
		{"0000000", `release: no commit "0000000" in repo`},
		{"master^{tree}", `release: no commit "master^{tree}" in repo`},
		{"-h", `release: invalid revision "-h"`},
		{"", `release: invalid revision ""`},
	} {
		got, err := g.ResolveCommit(ctx, c.rev)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ResolveCommit(%q) = %q, %v, want error %q...", c.rev, got, err, c.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	g := r.git()

	got, err := g.Describe(ctx, r.initial)
	if want := r.initial[:7]; !strings.HasPrefix(got, want) || err != nil {
		t.Errorf("Describe(%q) with no tags = %q, %v, want %s..., nil", r.initial, got, err, want)
	}

	git(t, r.clone, "tag", "-a", "-m", "first", "v0.1.0")
	second := commit(t, r.clone, "second")
	third := commit(t, r.clone, "third")
	for _, c := range []struct {
		sha  string
		want *regexp.Regexp
	}{
		{r.initial, regexp.MustCompile(`^v0\.1\.0$`)},
		{second, regexp.MustCompile(`^v0\.1\.0-1-g` + second[:7] + `[0-9a-f]*$`)},
		{third, regexp.MustCompile(`^v0\.1\.0-2-g` + third[:7] + `[0-9a-f]*$`)},
	} {
		got, err := g.Describe(ctx, c.sha)
		if !c.want.MatchString(got) || err != nil {
			t.Errorf("Describe(%q) = %q, %v, want %v, nil", c.sha, got, err, c.want)
		}
	}

	if _, err := g.Describe(ctx, "--dirty"); err == nil {
		t.Errorf("Describe(%q) = nil error, want an error", "--dirty")
	}
}

func TestTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	g := r.git()

	sha, exists, err := g.TagCommit(ctx, "v0.1.0")
	if sha != "" || exists || err != nil {
		t.Errorf("TagCommit(%q) before tagging = %q, %v, %v, want \"\", false, nil", "v0.1.0", sha, exists, err)
	}
	if err := g.CreateTag(ctx, "v0.1.0", r.initial, "", false); err != nil {
		t.Fatalf("CreateTag(%q) = %v", "v0.1.0", err)
	}
	if typ := git(t, r.clone, "cat-file", "-t", "refs/tags/v0.1.0"); typ != "tag" {
		t.Errorf("CreateTag made a %s object, want an annotated tag", typ)
	}
	if msg := git(t, r.clone, "tag", "-l", "--format=%(contents:subject)", "v0.1.0"); msg != "Release v0.1.0" {
		t.Errorf("CreateTag with no message gave message %q, want %q", msg, "Release v0.1.0")
	}
	second := commit(t, r.clone, "second")
	if err := g.CreateTag(ctx, "v0.1.1", second, "fixes the thing", false); err != nil {
		t.Fatalf("CreateTag(%q) = %v", "v0.1.1", err)
	}
	git(t, r.clone, "tag", "nightly") // lightweight

	tags, err := g.Tags(ctx)
	if err != nil || strings.Join(tags, " ") != "nightly v0.1.0 v0.1.1" {
		t.Errorf("Tags() = %q, %v, want [nightly v0.1.0 v0.1.1], nil", tags, err)
	}

	// A rerun finds the tag on the same commit; elsewhere it is a conflict.
	for _, c := range []struct {
		tag, wantSHA string
		wantExists   bool
	}{
		{"v0.1.0", r.initial, true},
		{"v0.1.1", second, true},
		{"nightly", second, true},
		{"v0.2.0", "", false},
	} {
		sha, exists, err := g.TagCommit(ctx, c.tag)
		if sha != c.wantSHA || exists != c.wantExists || err != nil {
			t.Errorf("TagCommit(%q) = %q, %v, %v, want %q, %v, nil", c.tag, sha, exists, err, c.wantSHA, c.wantExists)
		}
	}

	err = g.CreateTag(ctx, "v0.1.0", second, "again", false)
	if err == nil || !strings.Contains(err.Error(), "git tag -a") || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("CreateTag of an existing tag = %v, want an error with the command and \"already exists\"", err)
	}
	if err := g.CreateTag(ctx, "-f", second, "", false); err == nil {
		t.Errorf("CreateTag(%q) = nil, want an error", "-f")
	}

	// A tag of a tree is not a release.
	git(t, r.clone, "tag", "treetag", "HEAD^{tree}")
	if _, exists, err := g.TagCommit(ctx, "treetag"); !exists || err == nil {
		t.Errorf("TagCommit(%q) = %v, %v, want true and an error", "treetag", exists, err)
	}
}

func TestCreateTagSigned(t *testing.T) {
	t.Parallel()
	r := newRepos(t)
	git(t, r.clone, "config", "gpg.program", "false") // signing fails
	err := r.git().CreateTag(context.Background(), "v0.1.0", r.initial, "signed", true)
	if err == nil || !strings.Contains(err.Error(), "release: git tag -s") {
		t.Errorf("CreateTag(sign) with a failing gpg = %v, want an error from git tag -s", err)
	}
	if _, err := exec.Command("git", "-C", r.clone, "rev-parse", "--verify", "--quiet", "refs/tags/v0.1.0").Output(); err == nil {
		t.Errorf("CreateTag(sign) failed but left the tag behind")
	}
}

// sshSigning makes the repository dir sign tags with a new SSH key (git's
// gpg.format=ssh) and verify them against that key alone. It skips without
// ssh-keygen (fails under CI).
func sshSigning(t *testing.T, dir string) {
	t.Helper()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		fleettest.Unavailable(t, "ssh-keygen is not installed (Debian package openssh-client)")
	}
	keys := t.TempDir()
	key := filepath.Join(keys, "signing")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "release signing", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(keys, "allowed_signers")
	ident := git(t, dir, "var", "GIT_COMMITTER_IDENT") // "Name <email> time zone"
	email := ident[strings.Index(ident, "<")+1 : strings.Index(ident, ">")]
	if err := os.WriteFile(allowed, []byte(email+" "+string(pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "config", "gpg.format", "ssh")
	git(t, dir, "config", "user.signingkey", key)
	git(t, dir, "config", "gpg.ssh.allowedSignersFile", allowed)
}

// verifyTag runs git tag -v and returns what it said, and whether the
// signature is good.
func verifyTag(dir, tag string) (string, bool) {
	out, err := exec.Command("git", "-C", dir, "tag", "-v", tag).CombinedOutput()
	return string(out), err == nil
}

func TestCreateTagSignsWithSSHKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	sshSigning(t, r.clone)
	if err := r.git().CreateTag(ctx, "v0.1.0", r.initial, "", true); err != nil {
		t.Fatalf("CreateTag(sign) = %v", err)
	}
	if out, ok := verifyTag(r.clone, "v0.1.0"); !ok || !strings.Contains(out, `Good "git" signature`) {
		t.Errorf("git tag -v v0.1.0 of a signed tag: ok=%v\n%s", ok, out)
	}
	if body := git(t, r.clone, "cat-file", "-p", "v0.1.0"); !strings.Contains(body, "Release v0.1.0") || !strings.Contains(body, "-----BEGIN SSH SIGNATURE-----") {
		t.Errorf("tag object = %q, want the message Release v0.1.0 and an SSH signature", body)
	}
	if sha := git(t, r.clone, "rev-parse", "v0.1.0^{commit}"); sha != r.initial {
		t.Errorf("signed tag points at %s, want %s", sha, r.initial)
	}

	// Without sign, the same configuration makes an unsigned tag.
	if err := r.git().CreateTag(ctx, "v0.1.1", r.initial, "", false); err != nil {
		t.Fatal(err)
	}
	if out, ok := verifyTag(r.clone, "v0.1.1"); ok {
		t.Errorf("git tag -v of a tag made without sign succeeded:\n%s", out)
	}
}

func TestPushTagAndFetch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	var progress bytes.Buffer
	g := release.Git{Dir: r.clone, Stderr: &progress}

	if err := g.CreateTag(ctx, "v0.1.0", r.initial, "first", false); err != nil {
		t.Fatal(err)
	}
	if err := g.PushTag(ctx, "v0.1.0"); err != nil {
		t.Fatalf("PushTag() = %v", err)
	}
	if got := git(t, r.remote, "rev-parse", "refs/tags/v0.1.0^{commit}"); got != r.initial {
		t.Errorf("remote tag v0.1.0 = %s, want %s", got, r.initial)
	}
	if typ := git(t, r.remote, "cat-file", "-t", "refs/tags/v0.1.0"); typ != "tag" {
		t.Errorf("pushed tag is a %s object, want an annotated tag", typ)
	}
	if !strings.Contains(progress.String(), "v0.1.0") {
		t.Errorf("PushTag wrote %q to Stderr, want git's report naming the tag", progress.String())
	}
	if err := g.PushTag(ctx, "v9.9.9"); err == nil || !strings.Contains(err.Error(), "release: git push origin refs/tags/v9.9.9") {
		t.Errorf("PushTag of a missing tag = %v, want an error naming the command", err)
	}

	// Another developer fetches the tag, and a new commit.
	other := r.anotherClone(t)
	git(t, r.clone, "tag", "-a", "-m", "second", "v0.1.1")
	git(t, r.clone, "push", "-q", "origin", "v0.1.1")
	og := release.Git{Dir: other}
	if err := og.Fetch(ctx); err != nil {
		t.Fatalf("Fetch() = %v", err)
	}
	if sha, exists, err := og.TagCommit(ctx, "v0.1.1"); sha != r.initial || !exists || err != nil {
		t.Errorf("TagCommit(%q) after Fetch = %q, %v, %v, want %q, true, nil", "v0.1.1", sha, exists, err, r.initial)
	}

	// A local tag that differs from the remote's is reported, not clobbered.
	commit(t, other, "local")
	git(t, r.clone, "tag", "-a", "-m", "x", "v0.2.0", "HEAD")
	git(t, r.clone, "push", "-q", "origin", "v0.2.0")
	git(t, other, "tag", "-a", "-m", "y", "v0.2.0", "HEAD")
	if err := og.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "v0.2.0") {
		t.Errorf("Fetch() with a conflicting local tag = %v, want an error naming the tag", err)
	}

	bad := release.Git{Dir: r.clone, Remote: "nowhere"}
	if err := bad.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "release: git fetch --prune --tags nowhere") {
		t.Errorf("Fetch() from a missing remote = %v, want an error naming the command", err)
	}
	dash := release.Git{Dir: r.clone, Remote: "--upload-pack=touch x"}
	if err := dash.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "invalid remote") {
		t.Errorf("Fetch() from remote %q = %v, want an input error", dash.Remote, err)
	}
}

func TestAheadBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	g := r.git()
	other := r.anotherClone(t)

	check := func(step string, wantAhead, wantBehind int, wantUpstream bool) {
		t.Helper()
		if err := g.Fetch(ctx); err != nil {
			t.Fatalf("%s: Fetch() = %v", step, err)
		}
		ahead, behind, up, err := g.AheadBehind(ctx, "master")
		if ahead != wantAhead || behind != wantBehind || up != wantUpstream || err != nil {
			t.Errorf("%s: AheadBehind(master) = %d, %d, %v, %v, want %d, %d, %v, nil", step, ahead, behind, up, err, wantAhead, wantBehind, wantUpstream)
		}
	}
	check("even", 0, 0, true)
	commit(t, r.clone, "mine 1")
	commit(t, r.clone, "mine 2")
	check("ahead", 2, 0, true)
	git(t, r.clone, "reset", "-q", "--hard", r.initial)
	commit(t, other, "theirs")
	git(t, other, "push", "-q", "origin", "master")
	check("behind", 0, 1, true)
	commit(t, r.clone, "mine 3")
	check("diverged", 1, 1, true)

	git(t, r.clone, "branch", "local-only")
	ahead, behind, up, err := g.AheadBehind(ctx, "local-only")
	if ahead != 0 || behind != 0 || up || err != nil {
		t.Errorf("AheadBehind(local-only) = %d, %d, %v, %v, want 0, 0, false, nil", ahead, behind, up, err)
	}
	if _, _, _, err := g.AheadBehind(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), `no local branch "nosuch"`) {
		t.Errorf("AheadBehind(nosuch) = %v, want an error naming the branch", err)
	}
}

func TestPushIfAhead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	remoteHead := func(r repos, branch string) string {
		out, err := exec.Command("git", "-C", r.remote, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}

	for _, c := range []struct {
		name       string
		setup      func(t *testing.T, r repos) (branch string)
		wantPushed bool
		wantErr    string // part of the error; "" for none
	}{
		{
			name:  "even",
			setup: func(t *testing.T, r repos) string { return "master" },
		},
		{
			name: "ahead",
			setup: func(t *testing.T, r repos) string {
				commit(t, r.clone, "mine")
				return "master"
			},
			wantPushed: true,
		},
		{
			name: "ahead, current branch",
			setup: func(t *testing.T, r repos) string {
				commit(t, r.clone, "mine")
				return ""
			},
			wantPushed: true,
		},
		{
			name: "new branch",
			setup: func(t *testing.T, r repos) string {
				git(t, r.clone, "checkout", "-q", "-b", "hotfix")
				commit(t, r.clone, "fix")
				return "hotfix"
			},
			wantPushed: true,
		},
		{
			name: "behind",
			setup: func(t *testing.T, r repos) string {
				other := r.anotherClone(t)
				commit(t, other, "theirs")
				git(t, other, "push", "-q", "origin", "master")
				return "master"
			},
			wantErr: "is 1 commit(s) behind origin/master; run git pull --rebase origin master",
		},
		{
			name: "diverged",
			setup: func(t *testing.T, r repos) string {
				other := r.anotherClone(t)
				commit(t, other, "theirs")
				git(t, other, "push", "-q", "origin", "master")
				commit(t, r.clone, "mine")
				return "master"
			},
			wantErr: "has diverged from origin/master (1 and 1 different commits); run git pull --rebase origin master",
		},
		{
			name: "detached",
			setup: func(t *testing.T, r repos) string {
				git(t, r.clone, "checkout", "-q", "--detach")
				commit(t, r.clone, "detached work")
				return ""
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRepos(t)
			branch := c.setup(t, r)
			local := git(t, r.clone, "rev-parse", "HEAD")
			checkBranch := branch
			if checkBranch == "" {
				checkBranch = "master"
			}
			before := remoteHead(r, checkBranch)

			pushed, err := r.git().PushIfAhead(ctx, branch)
			if pushed != c.wantPushed {
				t.Errorf("PushIfAhead(%q) pushed = %v, want %v", branch, pushed, c.wantPushed)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("PushIfAhead(%q) = %v, want nil", branch, err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("PushIfAhead(%q) = %v, want an error containing %q", branch, err, c.wantErr)
			}

			after := remoteHead(r, checkBranch)
			if c.wantPushed && after != local {
				t.Errorf("remote %s = %s after the push, want %s", checkBranch, after, local)
			}
			if !c.wantPushed && after != before {
				t.Errorf("remote %s moved from %s to %s, want it untouched", checkBranch, before, after)
			}
		})
	}
}

func TestOnRemote(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	g := r.git()

	pushed := commit(t, r.clone, "pushed")
	git(t, r.clone, "push", "-q", "origin", "master")
	localOnly := commit(t, r.clone, "local only")

	// A commit that only a pushed tag reaches (its branch is gone).
	git(t, r.clone, "checkout", "-q", "--detach", pushed)
	tagged := commit(t, r.clone, "tagged")
	git(t, r.clone, "tag", "-a", "-m", "x", "v0.1.0")
	git(t, r.clone, "push", "-q", "origin", "v0.1.0")
	// A commit behind a tag that was never pushed.
	unpushedTag := commit(t, r.clone, "unpushed tag")
	git(t, r.clone, "tag", "v0.2.0")
	// A local tag whose name exists on the remote, but elsewhere.
	elsewhere := commit(t, r.clone, "tag elsewhere")
	git(t, r.clone, "tag", "-f", "-a", "-m", "moved", "v0.1.0")
	// The remote still has the old v0.1.0; keep a local tag that reaches it.
	git(t, r.clone, "tag", "v0.1.0-old", tagged)

	for _, c := range []struct {
		name, sha string
		want      bool
	}{
		{"initial", r.initial, true},
		{"pushed", pushed, true},
		{"pushed, short", pushed[:8], true},
		{"local only", localOnly, false},
		{"reached by a pushed tag", tagged, true},
		{"behind an unpushed tag", unpushedTag, false},
		{"behind a tag that differs from the remote's", elsewhere, false},
	} {
		got, err := g.OnRemote(ctx, c.sha)
		if got != c.want || err != nil {
			t.Errorf("OnRemote(%s %q) = %v, %v, want %v, nil", c.name, c.sha, got, err, c.want)
		}
	}
	if _, err := g.OnRemote(ctx, "0000000"); err == nil || !strings.Contains(err.Error(), "no commit") {
		t.Errorf("OnRemote(%q) = %v, want an error saying there is no such commit", "0000000", err)
	}
}

func TestRemoteURLAndUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepos(t)
	g := r.git()

	if url, err := g.RemoteURL(ctx); url != r.remote || err != nil {
		t.Errorf("RemoteURL() = %q, %v, want %q, nil", url, err, r.remote)
	}
	if url, err := (release.Git{Dir: r.clone, Remote: "upstream"}).RemoteURL(ctx); url != "" || err == nil {
		t.Errorf("RemoteURL() of a missing remote = %q, %v, want an error", url, err)
	}

	if got := g.User(ctx); got != "deployer" {
		t.Errorf("User() with no user.name = %q, want $USER %q", got, "deployer")
	}
	git(t, r.clone, "config", "user.name", "Ada Lovelace")
	if got := g.User(ctx); got != "Ada Lovelace" {
		t.Errorf("User() = %q, want %q", got, "Ada Lovelace")
	}
}

func TestGitCancelled(t *testing.T) {
	t.Parallel()
	r := newRepos(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.git().Tags(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tags() with a cancelled context = %v, want context.Canceled", err)
	}
}
