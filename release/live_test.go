package release_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/release"
)

func TestMaintenanceChangesOnlyALiteral(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 1, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	v1 := f.tag(t, "v0.1.0")
	if _, err := f.fleet().Deploy(ctx, v1); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(f.root(0), "a", "settings.py")
	const env = "MAINTENANCE_MODE = os.environ.get('MAINTENANCE', False)\n"
	for _, c := range []struct {
		name    string
		on      bool
		give    string // "" means no file
		want    string
		warning string // what the warning says after "h1: <path> "; "" means none
	}{
		{"false to true", true, "DEBUG = False\nMAINTENANCE_MODE = False\nX = 1\n", "DEBUG = False\nMAINTENANCE_MODE = True\nX = 1\n", ""},
		{"true to false, comment kept", false, "MAINTENANCE_MODE=True  # set by maint:enable\n", "MAINTENANCE_MODE=False  # set by maint:enable\n", ""},
		{"already true", true, "MAINTENANCE_MODE = True\n", "MAINTENANCE_MODE = True\n", ""},
		{"zero", true, "MAINTENANCE_MODE = 0\n", "MAINTENANCE_MODE = True\n", ""},
		{"one", false, "MAINTENANCE_MODE\t=\t1\n", "MAINTENANCE_MODE\t=\tFalse\n", ""},
		{"CRLF line ends", true, "A = 1\r\nMAINTENANCE_MODE = False\r\n", "A = 1\r\nMAINTENANCE_MODE = True\r\n", ""},
		{"environment lookup", true, env, env,
			"sets MAINTENANCE_MODE to something other than True or False (MAINTENANCE_MODE = os.environ.get('MAINTENANCE', False)): left unchanged"},
		{"a name", false, "MAINTENANCE_MODE = DEBUG\n", "MAINTENANCE_MODE = DEBUG\n", "sets MAINTENANCE_MODE to something other than True or False"},
		{"a longer number", true, "MAINTENANCE_MODE = 10\n", "MAINTENANCE_MODE = 10\n", "sets MAINTENANCE_MODE to something other than True or False"},
		{"a literal and an expression", true, "MAINTENANCE_MODE = False\n" + env, "MAINTENANCE_MODE = False\n" + env, "sets MAINTENANCE_MODE to something other than True or False"},
		{"another name", true, "MAINTENANCE_MODE_MESSAGE = False\n", "MAINTENANCE_MODE_MESSAGE = False\n", "has no MAINTENANCE_MODE assignment"},
		{"no file", true, "", "", "does not exist"},
	} {
		os.Remove(settings)
		if c.give != "" {
			os.WriteFile(settings, []byte(c.give), 0o644)
		}
		restarts := readFile(t, filepath.Join(f.homes[0], "restarts"))
		warning, err := release.Maintenance(ctx, f.hosts[0], f.opts, "settings.py", c.on)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := readFile(t, settings); got != c.want {
			t.Errorf("%s: settings.py = %q, want %q", c.name, got, c.want)
		}
		prefix := "h1: " + settings + " "
		switch {
		case c.warning == "" && warning != "":
			t.Errorf("%s: warning %q, want none", c.name, warning)
		case c.warning != "" && !strings.HasPrefix(warning, prefix+c.warning):
			t.Errorf("%s: warning %q, want %q", c.name, warning, prefix+c.warning+"...")
		}
		// Restarted only when the flag changed.
		want := restarts + "a\n"
		if c.warning != "" {
			want = restarts
		}
		if got := readFile(t, filepath.Join(f.homes[0], "restarts")); got != want {
			t.Errorf("%s: restarts %q after %q, want %q", c.name, got, restarts, want)
		}
	}
}
