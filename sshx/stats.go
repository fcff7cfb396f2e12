package sshx

import (
	"net"
	"sync/atomic"
)

// Stats counts what a host cost: tests and benchmarks read them to prove
// that a run used one connection and few sessions per host. Remote.Stats,
// Local.Stats and Pool.Stats return them.
type Stats struct {
	Connections   int64 // SSH connections opened (0 for Local)
	Sessions      int64 // commands started: SSH sessions, or local processes
	BytesSent     int64 // bytes written to the connection, encrypted, handshake included
	BytesReceived int64 // bytes read from the connection
}

type counters struct {
	connections, sessions, sent, received atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Connections:   c.connections.Load(),
		Sessions:      c.sessions.Load(),
		BytesSent:     c.sent.Load(),
		BytesReceived: c.received.Load(),
	}
}

// countingConn counts the bytes through a connection.
type countingConn struct {
	net.Conn
	c *counters
}

func (cc countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.received.Add(int64(n))
	return n, err
}

func (cc countingConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	cc.c.sent.Add(int64(n))
	return n, err
}
