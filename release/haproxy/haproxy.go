// Package haproxy takes a fleet's hosts out of an HAProxy backend and puts
// them back, through HAProxy's runtime API on its stats socket: a
// release.Balancer for a rollout in batches without a cloud load balancer.
//
// The socket needs "level admin" (stats socket /run/haproxy.sock mode 600
// level admin), and the backend's servers health checks ("check"), whose
// result says when a server put back is healthy.
//
// A server taken out is drained ("set server B/S state drain": no new
// connection), waited for until it has no session left ("show stat",
// scur), then put in maintenance ("state maint": no traffic at all, not
// even a persistent client's). One put back leaves maintenance drained,
// its health forced down ("set server B/S health down") so that only
// checks run after its restart can make it healthy, waits until
// HAProxy's own check passes, and only then is made ready ("state
// ready") and waited for until it is UP. Leaving maintenance straight for
// ready would count a server up at once, on the result of the last check
// before it was taken out, and send it traffic until the next check.
package haproxy

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
)

// Balancer is an HAProxy backend whose servers are the fleet's hosts.
type Balancer struct {
	// Socket is HAProxy's stats socket (level admin): a path for a unix
	// socket, or host:port for one it listens on over TCP
	// ("stats socket ipv4@10.0.0.2:9999 level admin").
	Socket string
	// Backend is the backend whose servers are the hosts.
	Backend string
	// Servers maps a host's name to its server's name in Backend; a host
	// not in it is the server of the same name.
	Servers map[string]string
	// Poll is the pause between two looks at a server's state; zero
	// means 100ms.
	Poll time.Duration
}

var _ release.Balancer = (*Balancer)(nil)

// Name names the backend in the output.
func (b *Balancer) Name() string { return fmt.Sprintf("HAProxy backend %q", b.Backend) }

func (b *Balancer) server(host string) string {
	if s, ok := b.Servers[host]; ok {
		return s
	}
	return host
}

func (b *Balancer) poll() time.Duration {
	if b.Poll > 0 {
		return b.Poll
	}
	return 100 * time.Millisecond
}

// command sends one command to the runtime API and returns its answer.
func (b *Balancer) command(ctx context.Context, cmd string) (string, error) {
	if b.Socket == "" {
		return "", errors.New("haproxy: Balancer.Socket is empty: give the path of HAProxy's stats socket (level admin)")
	}
	network := "unix"
	if !strings.Contains(b.Socket, "/") {
		network = "tcp"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, b.Socket)
	if err != nil {
		return "", fmt.Errorf("haproxy: the stats socket: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy: %s: %w", cmd, err)
	}
	out, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return "", fmt.Errorf("haproxy: %s: %w", cmd, err)
	}
	return string(out), nil
}

// setState sets a server's administrative state: ready, drain or maint.
func (b *Balancer) setState(ctx context.Context, host, state string) error {
	return b.set(ctx, host, "state "+state)
}

// set sends "set server BACKEND/SERVER what" for host's server.
func (b *Balancer) set(ctx context.Context, host, what string) error {
	cmd := "set server " + b.Backend + "/" + b.server(host) + " " + what
	out, err := b.command(ctx, cmd)
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); out != "" {
		// The runtime API answers nothing on success.
		return fmt.Errorf("haproxy: %s: %s", cmd, out)
	}
	return nil
}

// Server administrative states (srv_admin_state in "show servers state").
const (
	adminForcedMaint = 0x01                      // set server ... state maint
	adminMaint       = 0x01 | 0x02 | 0x04 | 0x20 // forced, inherited, configured, DNS resolution
	adminDrain       = 0x08 | 0x10               // forced, inherited
	checkConfigured  = 0x02                      // srv_check_state: the server has health checks
)

// serverStat is what HAProxy says of a server: its line of "show stat"
// and of "show servers state".
type serverStat struct {
	status  string // UP, DOWN, MAINT, DRAIN, "UP 1/2", "no check", ...
	check   string // the last check's result: L7OK, L4CON, ...
	scur    int    // its current sessions
	admin   int    // administrative state flags
	checked bool   // it has health checks
}

func (s serverStat) maint() bool   { return s.admin&adminMaint != 0 }
func (s serverStat) drained() bool { return s.admin&adminDrain != 0 }

// healthy reports whether HAProxy's check counts the server up: a
// drained server passing it shows DRAIN, a ready one UP (neither "going
// down", as "UP 1/2" is).
func (s serverStat) healthy() bool {
	return s.status == "UP" || s.status == "DRAIN" || (!s.checked && s.status == "no check")
}

func (s serverStat) String() string {
	out := s.status
	if s.check != "" {
		out += ", check " + s.check
	}
	return fmt.Sprintf("%s, %d sessions", out, s.scur)
}

// stats reads the backend's servers from "show stat" and "show servers
// state".
func (b *Balancer) stats(ctx context.Context) (map[string]serverStat, error) {
	out, err := b.command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	m, err := parseStat(b.Backend, out)
	if err != nil {
		return nil, err
	}

	out, err = b.command(ctx, "show servers state "+b.Backend)
	if err != nil {
		return nil, err
	}
	var head []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "#":
			head = f[1:]
		case head != nil && len(f) >= len(head):
			row := map[string]string{}
			for i, h := range head {
				row[h] = f[i]
			}
			s, ok := m[row["srv_name"]]
			if row["be_name"] != b.Backend || !ok {
				continue
			}
			admin, err1 := strconv.Atoi(row["srv_admin_state"])
			check, err2 := strconv.Atoi(row["srv_check_state"])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("haproxy: show servers state: unreadable line %q", strings.TrimSpace(line))
			}
			s.admin, s.checked = admin, check&checkConfigured != 0
			m[row["srv_name"]] = s
		}
	}
	if head == nil {
		return nil, fmt.Errorf("haproxy: show servers state %s: unreadable answer %q", b.Backend, strings.TrimSpace(out))
	}
	return m, nil
}

// parseStat reads the backend's servers from the answer to "show stat".
func parseStat(backend, out string) (map[string]serverStat, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy: show stat: unreadable answer: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	width := 0
	for _, name := range []string{"pxname", "svname", "scur", "status", "check_status"} {
		i, ok := col[name]
		if !ok {
			return nil, fmt.Errorf("haproxy: show stat has no %s column", name)
		}
		width = max(width, i+1)
	}
	m := map[string]serverStat{}
	for _, row := range rows[1:] {
		if len(row) < width || row[col["pxname"]] != backend {
			continue
		}
		sv := row[col["svname"]]
		if sv == "BACKEND" || sv == "FRONTEND" {
			continue
		}
		scur, _ := strconv.Atoi(row[col["scur"]])
		// "* " before the last check's result says a check is running
		// now: the result is still the last one's.
		check := strings.TrimPrefix(row[col["check_status"]], "* ")
		m[sv] = serverStat{status: row[col["status"]], check: check, scur: scur, checked: row[col["status"]] != "no check"}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("haproxy: no backend %q, or it has no servers", backend)
	}
	return m, nil
}

// servers returns the state of the hosts' servers; a host whose server
// the backend does not have is an error.
func (b *Balancer) servers(ctx context.Context, hosts []string) (map[string]serverStat, error) {
	st, err := b.stats(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if _, ok := st[b.server(h)]; !ok {
			return nil, fmt.Errorf("haproxy: backend %q has no server %q (host %s)", b.Backend, b.server(h), h)
		}
	}
	return st, nil
}

// wait polls the backend's servers until done says every host is there,
// or ctx ends; what says what was waited for.
func (b *Balancer) wait(ctx context.Context, hosts []string, what string, done func(serverStat) bool) error {
	pending := hosts
	for {
		st, err := b.servers(ctx, hosts)
		if err != nil {
			// The socket's deadline is ctx's: a dial or read it cuts
			// can end a moment before ctx says it is done. A read cut
			// by it is os.ErrDeadlineExceeded; a dial cut by it is
			// net's timeout error, which is context.DeadlineExceeded.
			if _, ok := ctx.Deadline(); ctx.Err() != nil || ok && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
				cause := ctx.Err()
				if cause == nil {
					cause = context.DeadlineExceeded
				}
				return fmt.Errorf("haproxy: backend %q: not yet %s: %s: %w", b.Backend, what, strings.Join(pending, ", "), cause)
			}
			return err
		}
		pending = nil
		for _, h := range hosts {
			if s := st[b.server(h)]; !done(s) {
				pending = append(pending, fmt.Sprintf("%s (%s)", h, s))
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy: backend %q: not yet %s: %s: %w", b.Backend, what, strings.Join(pending, ", "), ctx.Err())
		case <-time.After(b.poll()):
		}
	}
}

// Out drains the hosts' servers (no new connections; those open finish),
// waits until they have no session left, then puts them in maintenance,
// where they get no traffic at all. A server already in maintenance is
// left there; a server without health checks is refused, before any
// change: once out, only a passing check could tell when it can be put
// back.
func (b *Balancer) Out(ctx context.Context, hosts []string) error {
	st, err := b.servers(ctx, hosts)
	if err != nil {
		return err
	}
	var take []string
	for _, h := range hosts {
		s := st[b.server(h)]
		if !s.checked {
			return fmt.Errorf("haproxy: backend %q: server %q (host %s) has no health check: add \"check\" to its server line, so that it is put back only once healthy", b.Backend, b.server(h), h)
		}
		if !s.maint() {
			take = append(take, h)
		}
	}
	for _, h := range take {
		if err := b.setState(ctx, h, "drain"); err != nil {
			return err
		}
	}
	if err := b.wait(ctx, hosts, "drained", func(s serverStat) bool { return s.scur == 0 && (s.drained() || s.maint()) }); err != nil {
		return err
	}
	for _, h := range take {
		if err := b.setState(ctx, h, "maint"); err != nil {
			return err
		}
	}
	return nil
}

// In puts the hosts' servers back: those in maintenance leave it drained,
// with their health forced down; every server waits until HAProxy's own
// health check counts it up (a drained server passing it shows DRAIN,
// one failing it DOWN), is made ready, and waited for until it is UP. A
// server never gets traffic before a check run after it was put back
// passed.
func (b *Balancer) In(ctx context.Context, hosts []string) error {
	st, err := b.servers(ctx, hosts)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		s := st[b.server(h)]
		if s.admin&adminForcedMaint == 0 {
			continue
		}
		if err := b.setState(ctx, h, "drain"); err != nil {
			return err
		}
		if s.checked {
			if err := b.set(ctx, h, "health down"); err != nil {
				return err
			}
		}
	}
	if err := b.wait(ctx, hosts, "healthy", serverStat.healthy); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := b.setState(ctx, h, "ready"); err != nil {
			return err
		}
	}
	return b.wait(ctx, hosts, "healthy", func(s serverStat) bool { return s.healthy() && !s.drained() && !s.maint() })
}

// States reports each host's state in the backend: in service (UP, or
// going down but still UP), draining (drained, sessions left), out (in
// maintenance, drained with no session, or NOLB), unhealthy (DOWN, its
// check failing), unknown (no such server).
func (b *Balancer) States(ctx context.Context, hosts []string) (map[string]release.BalancerState, error) {
	st, err := b.stats(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string]release.BalancerState{}
	for _, h := range hosts {
		s, ok := st[b.server(h)]
		switch {
		case !ok:
			m[h] = release.Unknown
		case s.maint():
			m[h] = release.OutService
		case s.drained() && s.scur > 0:
			m[h] = release.Draining
		case s.drained(), strings.HasPrefix(s.status, "NOLB"):
			m[h] = release.OutService
		case strings.HasPrefix(s.status, "UP"), s.status == "no check":
			m[h] = release.InService
		default:
			m[h] = release.Unhealthy
		}
	}
	return m, nil
}
