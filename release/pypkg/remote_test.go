package pypkg

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"

	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
)

// fakePip records its arguments and the SHA-256 of each file it is given.
const fakePip = `#!/bin/sh
for a in "$@"; do
  case $a in
  -*|install) echo "arg $a" ;;
  *) echo "file $(basename "$a") $(sha256sum < "$a" | cut -c1-64)" ;;
  esac
done > "$(dirname "$0")/../pip.log"
`

func TestInstallOverSSH(t *testing.T) {
	t.Parallel()
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	files, err := srv.WriteClientFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent), ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	h, err := pool.Host(files.Alias)
	if err != nil {
		t.Fatal(err)
	}

	// A stand-in virtualenv whose pip only records what it was given.
	root := t.TempDir()
	venv := filepath.Join(root, "my env")
	writeFiles(t, venv, map[string]string{"bin/python": "#!/bin/sh\n", "bin/pip": fakePip})
	for _, f := range []string{"bin/python", "bin/pip"} {
		os.Chmod(filepath.Join(venv, f), 0o755)
	}

	local := t.TempDir()
	big := make([]byte, 3<<20)
	rand.Read(big)
	archives := []string{filepath.Join(local, "big-1.0.tar.gz"), filepath.Join(t.TempDir(), "it's.whl"), filepath.Join(t.TempDir(), "it's.whl")}
	bodies := [][]byte{big, []byte("one"), []byte("two")}
	for i, a := range archives {
		if err := os.WriteFile(a, bodies[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Install(context.Background(), h, venv, archives, []string{"pip", "install", "--no-index"}); err != nil {
		t.Fatal(err)
	}
	want := "arg install\narg --no-index\nfile big-1.0.tar.gz " + sha(big) + "\nfile it's.whl " + sha([]byte("one")) + "\nfile it's.whl " + sha([]byte("two")) + "\n"
	if got := string(readFile(t, filepath.Join(venv, "pip.log"))); got != want {
		t.Errorf("pip was given\n%s\nwant\n%s", got, want)
	}
	if cmds := srv.Commands(); len(cmds) != 1 {
		t.Errorf("Install ran %d commands, want 1: %q", len(cmds), cmds)
	}
	noLeftovers(t, root)

	// A host that stops reading early (no virtualenv there) fails at once.
	err = Install(context.Background(), h, filepath.Join(root, "nothere"), archives, nil)
	if err == nil || !strings.Contains(err.Error(), "nothere is not a virtualenv: it has no bin/python") {
		t.Errorf("Install into a missing virtualenv: %v, want a not-a-virtualenv error", err)
	}

	err = RunInstallScripts(context.Background(), h, root, []string{"my env/bin/pip"}, venv)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, filepath.Join(venv, "pip.log"))); !strings.HasPrefix(got, "file my env ") {
		t.Errorf("the install script was given %q, want the virtualenv", got)
	}
}
