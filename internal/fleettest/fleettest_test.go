package fleettest_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
)

// A host that runs many processes is up, every time .ci/fleet looks: the
// look once listed the host's processes into `grep -q`, which exits at the
// first match, and the next line's write then failed the pipeline, so a
// busy host was now and then reported not up (and pause failed on it).
func TestFleetSeesABusyHostUp(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 1)
	host := f.Hosts[0]
	ssh := fleettest.RequireTool(t, "ssh", "openssh-client")
	// Ten processes in the host's namespace, after its sshd; they print
	// their pids and are killed by them at the end.
	out, err := exec.Command(ssh, "-F", f.ConfigFile, host,
		`for i in 1 2 3 4 5 6 7 8 9 10; do setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!; done`).Output()
	if err != nil {
		t.Fatalf("starting processes on %s: %v", host, err)
	}
	pids := strings.Fields(string(out))
	if len(pids) != 10 {
		t.Fatalf("started %q, want 10 pids", pids)
	}
	t.Cleanup(func() {
		exec.Command(ssh, "-F", f.ConfigFile, host, "kill "+strings.Join(pids, " ")).Run()
	})
	for i := range 40 {
		cmd := exec.Command("bash", f.Script, "status")
		cmd.Env = append(cmd.Environ(), "MAGEFAB_FLEET_DIR="+f.Dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf(".ci/fleet status: %v\n%s", err, out)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if fields := strings.Fields(l); len(fields) < 3 || fields[2] != "up" {
				t.Fatalf("look %d of 40: %q, want every host up\n%s", i+1, l, out)
			}
		}
	}
}
