package magetargets

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh/agent"
)

// TestCeleryInitScriptPerHost renders the Celeryd template for each host
// and uploads it, executable, beside /etc/init.d/celeryd-<Unit>_<DeploymentType>
// (release.StagedPath), with beat on the first host only; the switch puts
// it in place and restarts it (release tests show that). The hosts are
// in-process SSH servers that keep what each was sent instead of writing
// it.
func TestCeleryInitScriptPerHost(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "scripts/init.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts/init.d/celeryd"), []byte(
		"CHDIR={{.Current}}\nTYPE={{.Environment.DeploymentType}}\nOPTS=\"-A {{.Unit}}{{if .Beat}} --beat{{end}}\"\n"), 0o644)
	Configure(Config{Unit: "five", RootDir: dir, SCM: "/srv/git/five.git", Celeryd: "scripts/init.d/celeryd", NoSudo: true})
	c, _ := currentConfig()
	env := c.Environments[envProduction]

	var mu sync.Mutex
	got := map[string]string{}  // host alias -> uploaded script
	cmds := map[string]string{} // host alias -> the upload's command
	var hosts []sshx.Host
	_, cfgFile := sshtestHosts(t, []string{"w1", "w2"}, func(alias string, srv *sshtest.Server) {
		srv.Handler = func(e *sshtest.Exec) {
			if strings.Contains(e.Command, "celeryd-five_PRODUCTION") && strings.Contains(e.Command, "sshx-upload") {
				b, _ := io.ReadAll(e.Stdin)
				mu.Lock()
				got[alias], cmds[alias] = string(b), e.Command
				mu.Unlock()
				return
			}
			sshtest.ShellHandler(e)
		}
	})
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: cfgFile, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
	t.Cleanup(func() { pool.Close() })
	for _, a := range []string{"w1", "w2"} {
		h, _ := pool.Host(a)
		hosts = append(hosts, h)
	}
	r := &fleetRun{cfg: c, env: env, hosts: hosts, console: sshx.NewConsole(io.Discard), opts: &release.Options{}, fleet: &release.Fleet{}}
	r.fleet.Hosts, r.fleet.Options = hosts, r.opts
	if err := r.wireHooks(context.Background(), &release.Target{Name: "v1"}, true); err != nil {
		t.Fatal(err)
	}
	const initScript = "/etc/init.d/celeryd-five_PRODUCTION"
	if len(r.opts.Services) != 1 || r.opts.Services[0] != initScript {
		t.Errorf("services restarted after a switch = %q, want %q", r.opts.Services, initScript)
	}
	if len(r.opts.Staged) != 1 || r.opts.Staged[0] != initScript {
		t.Errorf("files put in place by the switch = %q, want %q", r.opts.Staged, initScript)
	}
	for _, h := range hosts {
		if err := r.fleet.PerHost(context.Background(), &release.Prepared{Host: h, Root: "/var/webapps/five/releases", Dir: "b"}); err != nil {
			t.Fatalf("%s: %v", h.Name(), err)
		}
	}
	want := map[string]string{
		"w1": "CHDIR=/var/webapps/five/releases/current\nTYPE=PRODUCTION\nOPTS=\"-A five --beat\"\n",
		"w2": "CHDIR=/var/webapps/five/releases/current\nTYPE=PRODUCTION\nOPTS=\"-A five\"\n",
	}
	for h, w := range want {
		if got[h] != w {
			t.Errorf("%s was sent %q, want %q", h, got[h], w)
		}
		staged := release.StagedPath(initScript, h)
		if staged != "/etc/init.d/.celeryd-five_PRODUCTION.magefab-new."+h {
			t.Errorf("staged path %q", staged)
		}
		// The upload's script takes the temporary file, the size, the mode
		// and the destination as its arguments.
		if c := cmds[h]; !strings.Contains(c, " 755 "+sshx.Quote(staged)) {
			t.Errorf("%s: the upload does not write %s with mode 0755: %s", h, staged, c)
		}
	}

	// A rollback restarts celery but stages nothing.
	r.opts.Services, r.opts.Staged = nil, nil
	if err := r.wireHooks(context.Background(), &release.Target{}, false); err != nil {
		t.Fatal(err)
	}
	if len(r.opts.Services) != 1 || len(r.opts.Staged) != 0 {
		t.Errorf("rollback: services %q, staged %q", r.opts.Services, r.opts.Staged)
	}

	// A template that does not parse stops the deploy before anything runs.
	os.WriteFile(filepath.Join(dir, "scripts/init.d/celeryd"), []byte("{{.Nope"), 0o644)
	if err := r.wireHooks(context.Background(), &release.Target{}, true); err == nil || !strings.Contains(err.Error(), "Config.Celeryd") {
		t.Errorf("a broken template: %v", err)
	}
}
