//go:build unix

package release_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh/agent"
)

// Example deploys two releases of an app to a fleet of two hosts, both
// in-process SSH servers (package sshtest) whose deploy trees live in
// temporary homes, rolls the fleet back, and meets a deploy lock that a
// run which died left behind.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "release-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// The app's repository, with two release tags, and the remote the
	// hosts clone from.
	remote, app := filepath.Join(tmp, "app.git"), filepath.Join(tmp, "app")
	git := func(args ...string) {
		if out, err := exec.Command("git", append([]string{"-C", app}, args...)...).CombinedOutput(); err != nil {
			log.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := exec.Command("git", "init", "-q", "--bare", "-b", "master", remote).Run(); err != nil {
		log.Fatal(err)
	}
	os.MkdirAll(app, 0o755)
	git("init", "-q", "-b", "master")
	git("remote", "add", "origin", remote)
	for _, v := range []string{"v0.1.0", "v0.2.0"} {
		os.WriteFile(filepath.Join(app, "app.py"), []byte("print('"+v+"')\n"), 0o644)
		git("add", "app.py")
		git("commit", "-q", "-m", v)
		git("tag", "-a", "-m", v, v)
	}
	git("push", "-q", "origin", "master", "v0.1.0", "v0.2.0")
	target := func(tag string) release.Target {
		sha, err := exec.Command("git", "-C", app, "rev-parse", tag+"^{commit}").Output()
		if err != nil {
			log.Fatal(err)
		}
		return release.Target{Name: tag, SHA: string(bytes.TrimSpace(sha)), Tag: tag}
	}

	// Two hosts, and an ssh_config that names them.
	var config bytes.Buffer
	homes := map[string]string{}
	for _, name := range []string{"web1", "web2"} {
		srv := sshtest.NewUnstartedServer()
		srv.Alias = name
		homes[name] = filepath.Join(tmp, name)
		os.MkdirAll(homes[name], 0o755)
		srv.Dir, srv.Env = homes[name], []string{"HOME=" + homes[name], "XDG_CACHE_HOME="}
		srv.Start()
		defer srv.Close()
		files, err := srv.WriteClientFiles(filepath.Join(tmp, name+"-client"))
		if err != nil {
			log.Fatal(err)
		}
		b, _ := os.ReadFile(files.ConfigFile)
		config.Write(b)
	}
	sshConfig := filepath.Join(tmp, "ssh_config")
	os.WriteFile(sshConfig, config.Bytes(), 0o600)
	pool, err := sshx.NewPool(sshx.Config{
		ConfigFile: sshConfig,
		Agent:      agent.NewKeyring().(agent.ExtendedAgent), // not the user's agent: the keys the servers wrote
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	hosts, err := pool.Hosts([]string{"web1", "web2"})
	if err != nil {
		log.Fatal(err)
	}

	fleet := &release.Fleet{
		Hosts: hosts,
		Options: &release.Options{
			Layout: release.Layout{Path: "webapps/hello", ReleasesRoot: "releases", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: "env"},
			SCM:    remote,
			Python: "python3",
			Owner:  "alice@laptop",
			RunID:  "example-run",
			// Options.Console, not set here, would show each host's steps.
		},
	}
	show := func(what string, res []release.HostResult, err error) {
		if err != nil {
			log.Fatalf("%s: %v", what, err)
		}
		for _, r := range res {
			fmt.Printf("%s: %s: %s in %s\n", what, r.Host, r.Release, r.Dir)
		}
	}
	res, err := fleet.Deploy(ctx, target("v0.1.0"))
	show("deploy", res, err)
	res, err = fleet.Deploy(ctx, target("v0.2.0"))
	show("deploy", res, err)
	res, err = fleet.Rollback(ctx)
	show("rollback", res, err)

	// A run that died left its lock on web2: the next deploy is refused
	// on that host, and no host switches.
	lock := filepath.Join(homes["web2"], "webapps/hello/releases/.lock")
	os.Mkdir(lock, 0o755)
	os.WriteFile(filepath.Join(lock, "owner"), []byte("bob@desk deploying v0.1.9\n"), 0o644)
	_, err = fleet.Deploy(ctx, target("v0.2.0"))
	var locked *release.LockedError
	if errors.As(err, &locked) {
		fmt.Printf("refused: %s is locked by %s\n", locked.Host, locked.Owner)
	}
	if _, err := release.ForceUnlock(ctx, hosts[1], fleet.Options); err != nil {
		log.Fatal(err)
	}
	res, err = fleet.Deploy(ctx, target("v0.2.0"))
	show("deploy", res, err)
	// Output:
	// deploy: web1: v0.1.0 in a
	// deploy: web2: v0.1.0 in a
	// deploy: web1: v0.2.0 in b
	// deploy: web2: v0.2.0 in b
	// rollback: web1: v0.1.0 in a
	// rollback: web2: v0.1.0 in a
	// refused: web2 is locked by bob@desk deploying v0.1.9
	// deploy: web1: v0.2.0 in b
	// deploy: web2: v0.2.0 in b
}
