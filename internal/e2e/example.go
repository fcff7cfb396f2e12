package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/examples"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/wheel"
	"github.com/magefab/magefab/sshx"
)

// FleetPython is the interpreter of the fleet's hosts. The wheelhouse of
// an example holds what it has installed.
const FleetPython = "/usr/bin/python3"

// FleetValues are the values RewriteMagefile gives an example's magefile.
type FleetValues struct {
	SCM       string   // the bare remote the hosts clone
	Hosts     []string // the fleet's hosts
	SSHConfig string   // the fleet's ssh_config
	Wheels    string   // the offline wheelhouse
	Port      int      // where the app listens on every host
}

// MagefileFacts are what RewriteMagefile read in the example's
// configuration.
type MagefileFacts struct {
	Unit         string
	VersionPath  string   // the path of the example's VersionURL: where the app answers its commit
	Requirements []string // the requirement files a deploy to the fleet installs
	Keys         []string // the fields the example's Config literal sets, and those of its environments as Environments.<Field>

	// The example's Slots, as it sets them: SlotStart "" when it runs
	// none (the RestartCommand switch), SlotPort 0 in front mode.
	SlotStart, SlotStop, SlotCheck string
	SlotPort                       int
}

// RewriteMagefile returns an example's magefile.go with only the values
// that name the example's own servers replaced by the fleet's; the rest of
// its configuration (Unit, requirement files, Migrate, Fixtures, Crontab,
// TestRunner, Notifiers, DefaultEnvironment, ...) is kept as it is. What
// changes:
//
//   - SCM: the bare remote the fleet hosts clone;
//   - Environments: production gets every fleet host, and each other
//     environment that names hosts or a LoadBalancer gets the first;
//   - SSH: the fleet's ssh_config;
//   - Path: /var/webapps/<Unit> (each host's own tree) if it is elsewhere;
//   - Python and PipInstallCommand: the fleet's interpreter, and pip
//     installing from the offline wheelhouse built from its packages;
//   - PipRequirementsDev: removed, because development tools (pylint) are
//     not in the offline wheelhouse; the common and production files stay;
//   - VersionURL: the example's path, on each host's address and the
//     app's port;
//   - Slots.Port, when set (the slots share a port): the app's port.
func RewriteMagefile(src []byte, v FleetValues) ([]byte, MagefileFacts, error) {
	var facts MagefileFacts
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "magefile.go", src, parser.ParseComments)
	if err != nil {
		return nil, facts, err
	}
	var cfg *ast.CompositeLit
	ast.Inspect(file, func(n ast.Node) bool {
		if cl, ok := n.(*ast.CompositeLit); ok && cfg == nil {
			if sel, ok := cl.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Config" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "magetargets" {
					cfg = cl
				}
			}
		}
		return cfg == nil
	})
	if cfg == nil {
		return nil, facts, errors.New("magefile: no magetargets.Config literal")
	}
	e := &edits{src: src, fset: fset}
	fields := keyed(cfg)
	for k := range fields {
		facts.Keys = append(facts.Keys, k)
	}
	if facts.Unit, err = stringLit(fields["Unit"]); err != nil || facts.Unit == "" {
		return nil, facts, fmt.Errorf("magefile: Config.Unit: want a string literal (%v)", err)
	}
	for _, name := range []string{"PipRequirements", "PipRequirementsProduction"} {
		files, err := stringsLit(fields[name])
		if err != nil {
			return nil, facts, fmt.Errorf("magefile: Config.%s: %w", name, err)
		}
		facts.Requirements = append(facts.Requirements, files...)
	}
	if url, err := stringLit(fields["VersionURL"]); err != nil {
		return nil, facts, fmt.Errorf("magefile: Config.VersionURL: %w", err)
	} else if url != "" {
		m := regexp.MustCompile(`^https?://[^/]*(/.*)?$`).FindStringSubmatch(url)
		if m == nil {
			return nil, facts, fmt.Errorf("magefile: Config.VersionURL %q: not an http URL", url)
		}
		facts.VersionPath = m[1]
		if facts.VersionPath == "" {
			facts.VersionPath = "/"
		}
		e.set(cfg, fields, "VersionURL", strconv.Quote(fmt.Sprintf("http://{{.HostName}}:%d%s", v.Port, facts.VersionPath)))
	}
	if err := slotFacts(&facts, fields["Slots"]); err != nil {
		return nil, facts, fmt.Errorf("magefile: Config.Slots: %w", err)
	}
	if facts.SlotPort != 0 {
		port := keyed(fields["Slots"].Value.(*ast.CompositeLit))["Port"]
		e.replace(port.Value, strconv.Itoa(v.Port))
	}
	if path, err := stringLit(fields["Path"]); err != nil {
		return nil, facts, fmt.Errorf("magefile: Config.Path: %w", err)
	} else if path != "" && !strings.HasPrefix(path, "/var/webapps/") {
		e.set(cfg, fields, "Path", strconv.Quote("/var/webapps/"+facts.Unit))
	}
	e.set(cfg, fields, "SCM", strconv.Quote(v.SCM))
	e.set(cfg, fields, "Python", strconv.Quote(FleetPython))
	e.set(cfg, fields, "PipInstallCommand", strconv.Quote("pip install --no-index --find-links "+v.Wheels))
	e.set(cfg, fields, "SSH", fmt.Sprintf("magetargets.SSH{ConfigFile: %q}", v.SSHConfig))
	if kv := fields["PipRequirementsDev"]; kv != nil {
		e.remove(kv)
	}

	envs, ok := valueLit(fields["Environments"])
	if !ok {
		return nil, facts, errors.New("magefile: Config.Environments: want a map literal with a production environment")
	}
	production := false
	for _, elt := range envs.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		name, err := stringLit(&ast.KeyValueExpr{Value: kv.Key})
		env, ok := valueLit(kv)
		if err != nil || !ok {
			return nil, facts, errors.New("magefile: Config.Environments: want string keys and Environment literals")
		}
		hosts := v.Hosts[:1]
		if name == "production" {
			hosts, production = v.Hosts, true
		}
		ef := keyed(env)
		for k := range ef {
			if !slices.Contains(facts.Keys, "Environments."+k) {
				facts.Keys = append(facts.Keys, "Environments."+k)
			}
		}
		lb, named := ef["LoadBalancer"], ef["Hosts"]
		switch {
		case named != nil:
			e.replace(named.Value, fmt.Sprintf("%#v", hosts))
			if lb != nil {
				e.remove(lb)
			}
		case lb != nil:
			e.replace(lb, fmt.Sprintf("Hosts: %#v", hosts))
		case name == "production":
			e.set(env, ef, "Hosts", fmt.Sprintf("%#v", hosts))
		}
	}
	if !production {
		return nil, facts, errors.New("magefile: Config.Environments has no production environment")
	}
	slices.Sort(facts.Keys)
	out, err := format.Source(e.apply())
	if err != nil {
		return nil, facts, fmt.Errorf("the rewritten magefile does not parse: %w", err)
	}
	return out, facts, nil
}

// slotFacts reads the example's Slots literal, if it has one, into facts.
func slotFacts(facts *MagefileFacts, kv *ast.KeyValueExpr) error {
	if kv == nil {
		return nil
	}
	cl, ok := valueLit(kv)
	if !ok {
		return errors.New("want a magetargets.Slots literal")
	}
	f := keyed(cl)
	for name, dest := range map[string]*string{"Start": &facts.SlotStart, "Stop": &facts.SlotStop, "Check": &facts.SlotCheck} {
		var err error
		if *dest, err = stringLit(f[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if port := f["Port"]; port != nil {
		lit, ok := port.Value.(*ast.BasicLit)
		if !ok || lit.Kind != token.INT {
			return errors.New("Slots.Port is not an integer literal")
		}
		n, err := strconv.Atoi(lit.Value)
		if err != nil || n <= 0 {
			return fmt.Errorf("Slots.Port %s is not a port", lit.Value)
		}
		facts.SlotPort = n
	}
	if facts.SlotStart == "" || facts.SlotStop == "" {
		return errors.New("want Start and Stop")
	}
	return nil
}

// keyed maps the keys of a struct literal to its elements.
func keyed(cl *ast.CompositeLit) map[string]*ast.KeyValueExpr {
	m := map[string]*ast.KeyValueExpr{}
	for _, elt := range cl.Elts {
		if kv, ok := elt.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok {
				m[id.Name] = kv
			}
		}
	}
	return m
}

// stringLit is the value of a string literal field; "" for no field.
func stringLit(kv *ast.KeyValueExpr) (string, error) {
	if kv == nil {
		return "", nil
	}
	lit, ok := kv.Value.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", errors.New("not a string literal")
	}
	return strconv.Unquote(lit.Value)
}

// stringsLit is the value of a []string literal field; nil for no field.
func stringsLit(kv *ast.KeyValueExpr) ([]string, error) {
	cl, ok := valueLit(kv)
	if kv == nil {
		return nil, nil
	}
	if !ok {
		return nil, errors.New("not a []string literal")
	}
	var out []string
	for _, elt := range cl.Elts {
		s, err := stringLit(&ast.KeyValueExpr{Value: elt})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func valueLit(kv *ast.KeyValueExpr) (*ast.CompositeLit, bool) {
	if kv == nil {
		return nil, false
	}
	cl, ok := kv.Value.(*ast.CompositeLit)
	return cl, ok
}

// edits are replacements of byte ranges of a source file, applied at once,
// so that everything else (comments included) stays as it was.
type edits struct {
	src  []byte
	fset *token.FileSet
	list []edit
}

type edit struct {
	start, end int
	text       string
}

func (e *edits) off(p token.Pos) int { return e.fset.Position(p).Offset }

func (e *edits) replace(n ast.Node, text string) {
	e.list = append(e.list, edit{e.off(n.Pos()), e.off(n.End()), text})
}

// remove deletes an element of a literal with its comma, and its line
// when it has one of its own.
func (e *edits) remove(kv *ast.KeyValueExpr) {
	start, end := e.off(kv.Pos()), e.off(kv.End())
	rest := bytes.TrimLeft(e.src[end:], " \t")
	if len(rest) > 0 && rest[0] == ',' {
		rest = bytes.TrimLeft(rest[1:], " \t")
		end = len(e.src) - len(rest)
	}
	before := bytes.TrimRight(e.src[:start], " \t")
	if len(rest) > 0 && rest[0] == '\n' && (len(before) == 0 || before[len(before)-1] == '\n') {
		start, end = len(before), end+1
	}
	e.list = append(e.list, edit{start, end, ""})
}

// set gives the field key of the struct literal cl the Go expression
// value, adding the field when cl has none.
func (e *edits) set(cl *ast.CompositeLit, fields map[string]*ast.KeyValueExpr, key, value string) {
	if kv := fields[key]; kv != nil {
		e.replace(kv.Value, value)
		return
	}
	at := e.off(cl.Rbrace)
	e.list = append(e.list, edit{at, at, key + ": " + value + ",\n"})
}

func (e *edits) apply() []byte {
	slices.SortStableFunc(e.list, func(a, b edit) int { return b.start - a.start })
	out := slices.Clone(e.src)
	for _, ed := range e.list {
		out = slices.Concat(out[:ed.start], []byte(ed.text), out[ed.end:])
	}
	return out
}

// exampleCommand matches the command an example's README gives for its
// servers: the line after "cd .../releases/current &&".
var exampleCommand = regexp.MustCompile(`(?m)^\s*cd /var/webapps/[^ ]+/releases/current &&\s*\n\s*(.+)$`)

// ExampleStart reads from an example's README.md how its app starts on a
// server, in its live release dir, and returns that command for
// InitScript: ADDR and PORT become the host's $addr and $PORT, and
// NAME=value prefixes go through env.
func ExampleStart(readme string) (string, error) {
	m := exampleCommand.FindStringSubmatch(readme)
	if m == nil {
		return "", errors.New("the README does not say how the app starts on a server (a line after `cd /var/webapps/<unit>/releases/current &&`)")
	}
	cmd := regexp.MustCompile(`\bADDR\b`).ReplaceAllLiteralString(strings.TrimSpace(m[1]), `"$addr"`)
	cmd = regexp.MustCompile(`\bPORT\b`).ReplaceAllLiteralString(cmd, `"$PORT"`)
	if strings.Contains(strings.Fields(cmd)[0], "=") {
		cmd = "env " + cmd
	}
	return cmd, nil
}

// ExampleSlotScript returns, for an example that runs slots, the init
// script its Slots.Start and Slots.Stop run (/etc/init.d/<name>) and its
// file in the example (scripts/init.d/<name>), which the servers install
// there.
func ExampleSlotScript(facts MagefileFacts) (installed, file string, err error) {
	start, stop := strings.Fields(facts.SlotStart), strings.Fields(facts.SlotStop)
	if len(start) == 0 || len(stop) == 0 || start[0] != stop[0] || !strings.HasPrefix(start[0], "/etc/init.d/") || strings.Contains(start[0][len("/etc/init.d/"):], "/") {
		return "", "", fmt.Errorf("Slots.Start %q and Slots.Stop %q: want one init script, /etc/init.d/<name> start|stop {{.Dir}} {{.Slot}}, from the example's scripts/init.d/<name>", facts.SlotStart, facts.SlotStop)
	}
	return start[0], "scripts/init.d/" + path.Base(start[0]), nil
}

// slotAddr is the line of a slot script that sets the address its slots
// share the port on.
var slotAddr = regexp.MustCompile(`(?m)^ADDR=.*$`)

// FleetSlotScript returns an example's slot init script as the fleet
// runs it. With a shared port, its line ADDR=... (0.0.0.0 on a server)
// gives each fleet host's own address instead: the hosts share one
// network, and slots of every host on one port would answer for each
// other.
func FleetSlotScript(script string, sharedPort bool) (string, error) {
	if !sharedPort {
		return script, nil
	}
	if n := len(slotAddr.FindAllStringIndex(script, -1)); n != 1 {
		return "", fmt.Errorf("the slot script sets ADDR= on %d lines; want one line ADDR=<the address its slots listen on>", n)
	}
	return slotAddr.ReplaceAllLiteralString(script, `. /run/fleet/host; ADDR=$addr # this fleet host's own address`), nil
}

// ExampleNginx is the nginx server block of a front mode example, in the
// example.
func ExampleNginx(unit string) string { return "scripts/nginx/" + unit + ".conf" }

// nginxListen is the listen directive of a server block.
var nginxListen = regexp.MustCompile(`(?m)^([ \t]*)listen[ \t][^;\n]*;`)

// FleetNginxConf returns the configuration of the nginx that fronts a
// front mode example on a fleet host: the example's server block (its
// nginx file) listening on the host's address addr and port, with
// everything nginx writes under dir, and workers running as root so
// that they can open the slots' sockets.
func FleetNginxConf(server, dir, addr string, port int) (string, error) {
	if n := len(nginxListen.FindAllStringIndex(server, -1)); n != 1 {
		return "", fmt.Errorf("the nginx server block has %d listen lines; want one", n)
	}
	server = nginxListen.ReplaceAllString(server, fmt.Sprintf("${1}listen %s:%d;", addr, port))
	return fmt.Sprintf(`user root;
worker_processes 1;
error_log %[1]s/error.log warn;
events { worker_connections 512; }
http {
access_log off;
client_body_temp_path %[1]s/body;
proxy_temp_path %[1]s/proxy;
fastcgi_temp_path %[1]s/fastcgi;
uwsgi_temp_path %[1]s/uwsgi;
scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, server), nil
}

// exampleStop is /etc/init.d/<unit> for an example that runs slots. No
// deploy runs it; Project.Cleanup runs its stop on every host before it
// removes the unit's tree: it stops the host's nginx and drains every
// slot of the unit with the slot script, each only if its pid file names
// a process that is still its.
const exampleStop = `#!/bin/sh
# the UNIT example on this fleet host: stop stops its nginx and its slots
ROOT=/var/webapps/UNIT
[ "$1" = stop ] || { echo "usage: $0 stop" >&2; exit 2; }
p=$ROOT/nginx/nginx.pid
pid=$(cat "$p" 2>/dev/null) || pid=
case $pid in '' | *[!0-9]*) pid= ;; esac
# only the nginx of this configuration: the pid may be another process's by now
if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$ROOT/nginx/nginx.conf"; then
  kill -QUIT "$pid"
  i=0
  while [ -e "/proc/$pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
for p in "$ROOT"/releases/*/run/*.pid; do
  [ -f "$p" ] || continue
  s=${p##*/}
  MAGEFAB_DRAIN_TIMEOUT=5 SLOTS stop "${p%/run/*}" "${s%.pid}"
done
true
`

// startNginx starts, on every fleet host, in its namespace, an nginx
// that fronts the front mode example's slots on the host's address and
// port, configured with FleetNginxConf from the example's server block;
// its files are under /var/webapps/<unit>/nginx, and the stop of
// /etc/init.d/<unit> (exampleStop) stops it.
func startNginx(t *testing.T, f fleettest.Fleet, unit string, port int, server string) {
	t.Helper()
	dir := "/var/webapps/" + unit + "/nginx"
	for _, h := range f.Hosts {
		conf, err := FleetNginxConf(server, dir, f.Addr(t, h), port)
		if err != nil {
			t.Fatal(err)
		}
		q := sshx.Quote
		script := "mkdir -p " + q(dir) + " && cat >" + q(dir+"/nginx.conf") + " && /usr/sbin/nginx -q -e " + q(dir+"/error.log") +
			" -c " + q(dir+"/nginx.conf") + " -g " + q("pid "+dir+"/nginx.pid;")
		cmd := exec.Command("ssh", "-F", f.ConfigFile, h, "sudo -n sh -c "+q(script))
		cmd.Stdin = strings.NewReader(conf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: starting nginx for %s: %v\n%s", h, unit, err, out)
		}
	}
}

// requireMigrateReq checks that the fleet's hosts migrate the connections
// queued on a closing listener to another listener of its port
// (net.ipv4.tcp_migrate_req=1): without it, a slot that drains resets
// them, and the shared port mode loses requests. It skips, or fails under
// CI, otherwise.
func requireMigrateReq(t *testing.T, f fleettest.Fleet) {
	t.Helper()
	for _, h := range f.Hosts {
		out, err := exec.Command("ssh", "-F", f.ConfigFile, h, "cat /proc/sys/net/ipv4/tcp_migrate_req").CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != "1" {
			fleettest.Unavailable(t, fmt.Sprintf("net.ipv4.tcp_migrate_req is %q on %s (%v), and slots sharing a port lose the connections queued on a draining one: sysctl -w net.ipv4.tcp_migrate_req=1 (Linux 5.14 and later)", got, h, err))
		}
	}
}

// NewExample copies the example name (examples/<name>: its app, settings,
// requirement files, tests, scripts and magefile.go) into a test project
// that deploys to the fleet: its magefile rewritten by RewriteMagefile, a
// wheelhouse of what its requirement files list, packed from the fleet's
// Python (the test skips, or fails under CI, when that is not installed),
// and a bare remote under /srv/git. An example that runs slots gets its
// slot init script installed where its Slots.Start names it (with
// FleetSlotScript's change), and, in front mode, an nginx on every host
// with its server block (FleetNginxConf); a shared port needs
// net.ipv4.tcp_migrate_req=1. An example without slots gets
// /etc/init.d/<Unit> starting the app as its README says. The app keeps
// the example's unit, and so its paths on the hosts; anything an earlier
// run left there is removed first, and everything is removed when the
// test ends.
func NewExample(t *testing.T, f fleettest.Fleet, name string) *Project {
	t.Helper()
	fleettest.RequireTool(t, "git", "git")
	fleettest.RequireTool(t, FleetPython, "python3")
	fsys, err := examples.FS(name)
	if err != nil {
		t.Fatal(err)
	}
	src, err := fs.ReadFile(fsys, "magefile.go")
	if err != nil {
		t.Fatal(err)
	}

	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	p := &Project{Fleet: f, hosts: f.Hosts, Dir: t.TempDir(), mage: Mage(t)}
	p.Port = 8100 + int(b[0])%200*4 + int(b[1])%4
	v := FleetValues{Hosts: f.Hosts, SSHConfig: f.ConfigFile, Port: p.Port}
	_, facts, err := RewriteMagefile(src, v)
	if err != nil {
		t.Fatalf("%s example: %v", name, err)
	}
	p.Unit, p.VersionPath = facts.Unit, facts.VersionPath
	p.Remote = filepath.Join("/srv/git", p.Unit+"-"+id+".git")
	p.Wheels = filepath.Join("/srv", "magefab-wheels-"+p.Unit+"-"+id)
	v.SCM, v.Wheels = p.Remote, p.Wheels
	magefile, _, err := RewriteMagefile(src, v)
	if err != nil {
		t.Fatal(err)
	}

	gitConfig := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(gitConfig, []byte("[safe]\n\tdirectory = *\n[user]\n\tname = Tess Tester\n\temail = tess@example.com\n[init]\n\tdefaultBranch = master\n"), 0o644)
	p.gitEnv = []string{"GIT_CONFIG_GLOBAL=" + gitConfig, "GIT_CONFIG_NOSYSTEM=1"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The init scripts, before the cleanup of what an earlier run left:
	// /etc/init.d/<Unit>'s stop is how it stops the app on each host.
	scripts, server := exampleScripts(t, fsys, name, facts, p.Port)
	if facts.SlotPort > 0 {
		requireMigrateReq(t, f)
	}
	if server != "" {
		fleettest.RequireTool(t, "/usr/sbin/nginx", "nginx")
	}
	for file, body := range scripts {
		must(os.WriteFile(file, []byte(body), 0o755))
	}
	p.Cleanup() // what an earlier run of this example left on the hosts
	t.Cleanup(p.Cleanup)
	for file := range scripts {
		p.cleanup = append(p.cleanup, func() { os.Remove(file) })
	}

	var names []string
	for _, req := range facts.Requirements {
		b, err := fs.ReadFile(fsys, req)
		if err != nil {
			t.Fatalf("%s example: %v", name, err)
		}
		names = append(names, wheel.RequirementNames(string(b))...)
	}
	py, err := wheel.LocalPython(FleetPython)
	must(err)
	must(os.MkdirAll(p.Wheels, 0o755))
	p.cleanup = append(p.cleanup, func() { os.RemoveAll(p.Wheels) })
	packing := time.Now()
	whls, err := py.Wheels(p.Wheels, names...)
	if err != nil {
		var ni *wheel.NotInstalledError
		if errors.As(err, &ni) {
			fleettest.Unavailable(t, fmt.Sprintf("the %s example needs %s: %v", name, strings.Join(names, ", "), err))
		}
		t.Fatal(err)
	}
	for i, w := range whls {
		whls[i] = filepath.Base(w)
	}
	t.Logf("the %s example's wheelhouse, from %s: %s (%.1fs)", name, FleetPython, strings.Join(whls, " "), time.Since(packing).Seconds())

	p.cleanup = append(p.cleanup, func() {
		for _, h := range f.Hosts {
			exec.Command("ssh", "-F", f.ConfigFile, h, "sudo -n crontab -r -u deploy 2>/dev/null").Run()
		}
	})

	must(os.CopyFS(p.Dir, fsys))
	for file, body := range map[string][]byte{"magefile.go": magefile, "go.mod": []byte(p.goMod())} {
		must(os.WriteFile(filepath.Join(p.Dir, file), body, 0o644))
	}
	p.publish(t, "the "+name+" example")
	if server != "" {
		startNginx(t, f, p.Unit, p.Port, server)
	}
	return p
}

// exampleScripts returns the init scripts the example needs on the fleet,
// by path: its slot script and an /etc/init.d/<Unit> that stops the slots
// (exampleStop) if it runs slots, else /etc/init.d/<Unit> starting the
// app on port as its README says; and, in front mode, its nginx server
// block.
func exampleScripts(t *testing.T, fsys fs.FS, name string, facts MagefileFacts, port int) (scripts map[string]string, server string) {
	t.Helper()
	unit := filepath.Join("/etc/init.d", facts.Unit)
	if facts.SlotStart == "" {
		readme, err := fs.ReadFile(fsys, "README.md")
		if err != nil {
			t.Fatal(err)
		}
		start, err := ExampleStart(string(readme))
		if err != nil {
			t.Fatalf("%s example: %v", name, err)
		}
		return map[string]string{unit: InitScript(facts.Unit, port, start, facts.VersionPath, "")}, ""
	}
	installed, file, err := ExampleSlotScript(facts)
	if err != nil {
		t.Fatalf("%s example: %v", name, err)
	}
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		t.Fatalf("%s example: the slot script: %v", name, err)
	}
	slot, err := FleetSlotScript(string(b), facts.SlotPort > 0)
	if err != nil {
		t.Fatalf("%s example: %s: %v", name, file, err)
	}
	if facts.SlotPort == 0 {
		b, err := fs.ReadFile(fsys, ExampleNginx(facts.Unit))
		if err != nil {
			t.Fatalf("%s example: front mode, and no nginx server block: %v", name, err)
		}
		server = string(b)
	}
	stop := strings.NewReplacer("UNIT", facts.Unit, "SLOTS", installed).Replace(exampleStop)
	return map[string]string{installed: slot, unit: stop}, server
}
