// Package haproxy takes a fleet's hosts out of an HAProxy backend and puts
// them back, through HAProxy's runtime API on its stats socket: a
// release.Balancer for a rollout in batches without a cloud load balancer.
//
// The socket needs "level admin" (stats socket /run/haproxy.sock mode 600
// level admin), and the backend's servers health checks ("check"), whose
// result says when a server put back is healthy.
package haproxy

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
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
	cmd := "set server " + b.Backend + "/" + b.server(host) + " state " + state
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

// serverStat is a server's line of "show stat".
type serverStat struct {
	status string // UP, DOWN, MAINT, DRAIN, "UP 1/2", ...
	scur   int    // its current sessions
}

// stats reads the backend's servers from "show stat".
func (b *Balancer) stats(ctx context.Context) (map[string]serverStat, error) {
	out, err := b.command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
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
	for _, name := range []string{"pxname", "svname", "scur", "status"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("haproxy: show stat has no %s column", name)
		}
	}
	m := map[string]serverStat{}
	for _, row := range rows[1:] {
		if len(row) <= col["status"] || row[col["pxname"]] != b.Backend {
			continue
		}
		sv := row[col["svname"]]
		if sv == "BACKEND" || sv == "FRONTEND" {
			continue
		}
		scur, _ := strconv.Atoi(row[col["scur"]])
		m[sv] = serverStat{status: row[col["status"]], scur: scur}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("haproxy: no backend %q, or it has no servers", b.Backend)
	}
	return m, nil
}

// wait polls the backend's stats until done says every host is there, or
// ctx ends; what says what was waited for.
func (b *Balancer) wait(ctx context.Context, hosts []string, what string, done func(serverStat) bool) error {
	for {
		st, err := b.stats(ctx)
		if err != nil {
			return err
		}
		var pending []string
		for _, h := range hosts {
			s, ok := st[b.server(h)]
			if !ok {
				return fmt.Errorf("haproxy: backend %q has no server %q (host %s)", b.Backend, b.server(h), h)
			}
			if !done(s) {
				pending = append(pending, fmt.Sprintf("%s (%s, %d sessions)", h, s.status, s.scur))
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy: %s: not yet: %s: %w", what, strings.Join(pending, ", "), ctx.Err())
		case <-time.After(b.poll()):
		}
	}
}

// Out drains the hosts' servers (no new connections; those open finish)
// and waits until they have no session left. They stay in the drain state,
// where HAProxy goes on checking their health, which In waits for.
func (b *Balancer) Out(ctx context.Context, hosts []string) error {
	for _, h := range hosts {
		if err := b.setState(ctx, h, "drain"); err != nil {
			return err
		}
	}
	return b.wait(ctx, hosts, "drained", func(s serverStat) bool { return s.scur == 0 })
}

// In waits until HAProxy's own health check passes for each host's
// server (a drained server passing it shows DRAIN, one failing it DOWN),
// then makes them ready and waits until they are UP: a server never gets
// traffic before a check passed.
func (b *Balancer) In(ctx context.Context, hosts []string) error {
	healthy := func(s serverStat) bool { return s.status == "DRAIN" || s.status == "UP" }
	if err := b.wait(ctx, hosts, "healthy", healthy); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := b.setState(ctx, h, "ready"); err != nil {
			return err
		}
	}
	return b.wait(ctx, hosts, "healthy", func(s serverStat) bool { return s.status == "UP" })
}

// States reports each host's state in the backend.
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
		case strings.HasPrefix(s.status, "MAINT"):
			m[h] = release.OutService
		case strings.HasPrefix(s.status, "DRAIN") && s.scur > 0:
			m[h] = release.Draining
		case strings.HasPrefix(s.status, "DRAIN"):
			m[h] = release.OutService
		case strings.HasPrefix(s.status, "UP"), s.status == "no check":
			m[h] = release.InService
		default:
			m[h] = release.Unhealthy
		}
	}
	return m, nil
}
