// Package testenv isolates tests from the environment of whoever runs them:
// git's configuration and identity, and the AWS SDK's configuration; and
// gives them what they need of it (a port that refuses connections).
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// IsolateGit makes git in this process see no global or system
// configuration, a fixed identity and a scratch HOME, for TestMain. It
// returns a function that removes the scratch HOME.
func IsolateGit() (cleanup func(), err error) {
	home, err := os.MkdirTemp("", "magefab-test-home")
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]string{
		"HOME":                home,
		"XDG_CONFIG_HOME":     filepath.Join(home, ".config"),
		"GIT_CONFIG_GLOBAL":   os.DevNull,
		"GIT_CONFIG_NOSYSTEM": "1",
		"GIT_AUTHOR_NAME":     "Author",
		"GIT_AUTHOR_EMAIL":    "author@example.com",
		"GIT_COMMITTER_NAME":  "Committer",
		"GIT_COMMITTER_EMAIL": "committer@example.com",
		"USER":                "deployer",
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_CEILING_DIRECTORIES"} {
		os.Unsetenv(k)
	}
	return func() { os.RemoveAll(home) }, nil
}

// AWS gives the AWS SDK static credentials and a region and nothing else
// to find: no shared config files, no profile, no instance metadata
// service, no endpoint overrides. With an explicit endpoint on loopback,
// every request stays there.
func AWS(t testing.TB, keyID, secret, region string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                       keyID,
		"AWS_SECRET_ACCESS_KEY":                   secret,
		"AWS_SESSION_TOKEN":                       "",
		"AWS_REGION":                              region,
		"AWS_DEFAULT_REGION":                      "",
		"AWS_PROFILE":                             "",
		"AWS_CONFIG_FILE":                         filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":             filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":               "true",
		"AWS_ENDPOINT_URL":                        "",
		"AWS_ENDPOINT_URL_EC2":                    "",
		"AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING": "",
		"AWS_ENDPOINT_URL_S3":                     "",
	} {
		t.Setenv(k, v)
	}
}

// Git runs git in dir and returns its output, trimmed; it fails the test if
// git fails.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Repos is a bare "remote" repository and a clone of it with one pushed
// commit on master.
type Repos struct {
	Remote, Clone string
	Initial       string // SHA of the first commit
}

// NewRepos makes Repos in a temporary directory; it skips the test when
// git is not installed.
func NewRepos(t testing.TB) Repos {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	r := Repos{Remote: filepath.Join(dir, "remote.git"), Clone: filepath.Join(dir, "clone")}
	Git(t, dir, "init", "-q", "--bare", "-b", "master", r.Remote)
	Git(t, dir, "clone", "-q", r.Remote, r.Clone)
	Git(t, r.Clone, "symbolic-ref", "HEAD", "refs/heads/master")
	r.Initial = Commit(t, r.Clone, "initial")
	Git(t, r.Clone, "push", "-q", "origin", "master")
	return r
}

// Commit makes an empty commit in dir and returns its SHA.
func Commit(t testing.TB, dir, msg string) string {
	t.Helper()
	Git(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return Git(t, dir, "rev-parse", "HEAD")
}

// RefusingAddr returns a loopback address at which every connection is
// refused for the rest of the test: a socket bound to it, never
// listening, holds its port. A closed server's port is no such address:
// another test's listener may take it, and answer.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// AppendFile adds text at the end of the file at path.
func AppendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}
