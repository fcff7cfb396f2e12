package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/magefab/magefab/internal/e2e"
)

// The slot tools are magefab with Slots: each release dir runs as a
// process of its own, started beside the live one and checked before it
// gets traffic.
//
//   - magefab-slots (front mode): an nginx on every host listens on the
//     app's port at the host's address and proxies to the unix socket
//     <root>/releases/current/run/app.sock; flipping current moves the
//     traffic.
//   - magefab-port (shared port): the slots listen together on the app's
//     port with SO_REUSEPORT; the old one drains once every host switched.

// slotMagefile is the magefile of a slot tool: the magefab tool's, from
// the app's repository (RootDir), with Slots driving the unit's slot init
// script.
func slotMagefile(w *workspace, unit string, port int) string {
	extra := fmt.Sprintf(`RootDir: %q,
		Slots: magetargets.Slots{
			Start: "/etc/init.d/{{.Unit}}-slot start {{.Dir}} {{.Slot}}",
			Stop:  "/etc/init.d/{{.Unit}}-slot stop {{.Dir}} {{.Slot}}",
			Check: "/version",
			Port:  %d,
		},`, w.app, port)
	return e2eMagefile(w, unit, extra)
}

func newSlotTool(w *workspace, f *fleet, name, unit string, port int, front bool) (*tool, error) {
	slotPort := port
	if front {
		slotPort = 0
	}
	t, err := newMagefileTool(w, name, unit, port, slotMagefile(w, unit, slotPort))
	if err != nil {
		return nil, err
	}
	t.slots, t.slotPort = true, slotPort
	if front {
		ng := &nginxFront{f: f, dir: filepath.Join(w.tmp, "nginx-"+unit), unit: unit, port: port}
		t.up, t.down = ng.up, ng.down
	}
	return t, nil
}

// newMagefileTool is a magefab tool deployed by a magefile of its own,
// magefile, in a directory named name: deploy:tag and deploy:rollback of
// the production environment.
func newMagefileTool(w *workspace, name, unit string, port int, magefile string) (*tool, error) {
	dir := filepath.Join(w.tmp, name)
	sum, err := os.ReadFile(filepath.Join(w.src, "go.sum"))
	if err != nil {
		return nil, err
	}
	if err := writeFiles(dir, map[string]string{
		"magefile.go": magefile,
		"go.mod":      goMod("bench"+w.id+strings.ReplaceAll(name, "-", ""), w.src),
		"go.sum":      string(sum),
	}); err != nil {
		return nil, err
	}
	t := &tool{
		name: name, unit: unit, port: port, dir: dir,
		current:    "/var/webapps/" + unit + "/releases/current",
		rollbackTo: 1,
		configure:  func(int) error { return nil },
		patterns:   magefabPatterns,
	}
	t.deploy = func(ctx context.Context, n int, r release) *exec.Cmd {
		return command(ctx, dir, w.mageEnv(n), w.mage, "env:production", "deploy:tag", r.Tag)
	}
	t.rollback = func(ctx context.Context, n int) *exec.Cmd {
		return command(ctx, dir, w.mageEnv(n), w.mage, "env:production", "deploy:rollback")
	}
	return t, nil
}

// nginxFront is one nginx per fleet host, started over SSH so that it runs
// in the host's mount namespace and reaches the host's own /var/webapps.
type nginxFront struct {
	f    *fleet
	dir  string // per host: <dir>/webI/{nginx.conf,nginx.pid,error.log,...}
	unit string
	port int
	max  int // hosts it was started on
}

// nginxServer is the server block of the front: e2e.FleetNginxConf
// makes it a whole configuration, listening on the host's address.
const nginxServer = `server {
	listen 127.0.0.1:80;
	location / {
		proxy_pass http://unix:/var/webapps/%s/releases/current/run/app.sock;
		proxy_set_header Host $host;
	}
}`

// up starts nginx on hosts web1..webN where it does not run yet.
func (g *nginxFront) up(ctx context.Context, n int) error {
	for i, h := range hosts(n) {
		d := filepath.Join(g.dir, h)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		conf, err := e2e.FleetNginxConf(fmt.Sprintf(nginxServer, g.unit), d, addr(i), g.port)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "nginx.conf"), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	script := fmt.Sprintf(`d=%s/$(sed -n 's/^name=//p' /run/fleet/host)
[ -f "$d/nginx.pid" ] && tr '\0' ' ' <"/proc/$(cat "$d/nginx.pid")/cmdline" 2>/dev/null | grep -qF -- "$d/nginx.conf" && exit 0
sudo -n nginx -q -c "$d/nginx.conf" -g "pid $d/nginx.pid;"`, g.dir)
	g.max = max(g.max, n)
	if err := g.f.onEach(ctx, n, script, nil); err != nil {
		return fmt.Errorf("starting nginx for %s: %w", g.unit, err)
	}
	return nil
}

// down stops the nginx of every host it was started on, by its pid file.
func (g *nginxFront) down(ctx context.Context) error {
	if g.max == 0 {
		return nil
	}
	script := fmt.Sprintf(`p=%s/$(sed -n 's/^name=//p' /run/fleet/host)/nginx.pid
[ -f "$p" ] || exit 0
# only the nginx of this config (the pid may be another process's by now)
tr '\0' ' ' <"/proc/$(cat "$p")/cmdline" 2>/dev/null | grep -qF -- "$(dirname "$p")/nginx.conf" || { sudo -n rm -f "$p"; exit 0; }
sudo -n kill -QUIT "$(cat "$p")"; i=0
while [ -f "$p" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done`, g.dir)
	return g.f.onEach(ctx, g.max, script, nil)
}
