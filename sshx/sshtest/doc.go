// Package sshtest provides an in-process SSH server for tests, in the
// spirit of net/http/httptest. It is built on golang.org/x/crypto/ssh and
// does not need *testing.T, so it can also serve as an embedded host in
// demos.
//
// # Starting a server
//
// [NewServer] starts a server on 127.0.0.1 with freshly generated ed25519
// host and client keys and a temporary working directory:
//
//	srv := sshtest.NewServer()
//	defer srv.Close()
//	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("alice"))
//
// To configure it first, use [NewUnstartedServer], set fields such as
// [Server.Dir], [Server.Env], [Server.Handler] or [Server.AuthorizedKeys],
// then call [Server.Start]. The server listens on loopback only and accepts
// public-key authentication with [Server.ClientKey] or one of
// [Server.AuthorizedKeys], for any user name; the names are recorded by
// [Server.Users].
//
// # Commands
//
// Every "exec" request is recorded by [Server.Commands] and handed to
// [Server.Handler] as an [Exec]. The default handler, [ShellHandler], runs
// the command with /bin/sh -c in Dir, in its own process group, with the
// environment described at [Exec.Env]. The exit status is sent with
// "exit-status", or "exit-signal" when the command was killed by a signal.
//
// Sessions accept "env" requests (added to the command's environment),
// "auth-agent-req@openssh.com", "exec" and "signal". Requests for a pty, a
// shell or a subsystem are refused. Global requests are answered as OpenSSH
// answers them: "keepalive@openssh.com" and other unknown requests fail,
// "no-more-sessions@openssh.com" succeeds and forbids further sessions on
// the connection. "direct-tcpip" channels are described below; other
// channel types than "session" are rejected.
//
// # Jump host
//
// With [Server.TCPForwarding] set, the server is a jump host: a client's
// "direct-tcpip" channel (ssh -J, ProxyJump, ssh.Client.Dial) reaches any
// address, another Server for instance. Without it, every such channel is
// refused as "administratively prohibited", as sshd with AllowTcpForwarding
// no refuses it; an address that does not answer is refused as "connect
// failed". [Stats.Forwards] and [Stats.ForwardsRefused] count them.
//
// # Signals and closing
//
// A "signal" request (TERM, KILL, INT, HUP, ...) is delivered to the whole
// process group of the command. Signals sent after the exec request but
// before the process has started are queued; signals sent before the exec
// request are refused. Closing the session channel from the client, losing
// the connection or closing the server kills the command's process group
// with SIGKILL. [Server.Close] closes every connection and waits for all
// commands and goroutines of the server to finish.
//
// # Agent forwarding
//
// When the client sends "auth-agent-req@openssh.com" before "exec", the
// server listens on a unix socket in a private temporary directory, passes
// its path as [Exec.AgentSocket] and sets SSH_AUTH_SOCK for the command.
// Each connection to the socket opens an "auth-agent@openssh.com" channel
// to the client and copies bytes both ways. With golang.org/x/crypto/ssh
// the client side is agent.ForwardToAgent plus agent.RequestAgentForwarding.
// A handler can also open an agent channel unasked, with
// [Exec.OpenAgentChannel], to check that a client refuses it, and
// [Server.OnConnect] can open one the moment a connection is up.
//
// # Faults
//
// [Server.SetFault] switches the server into a failure mode at any time:
// hanging handshakes, commands that never complete, dropped or frozen
// connections, connections the server no longer reads but still sends on,
// or rejected authentication. See [Fault] for the details of each mode and
// [Server.Stats] for counters to check what happened.
//
// # OpenSSH clients
//
// [Server.KnownHostsLine] returns the server's known_hosts entry and
// [Server.WriteClientFiles] writes a private key, a known_hosts file and an
// ssh_config file, so that "ssh -F <config> <alias> <command>" and tools
// built on OpenSSH can connect without touching the user's own files.
package sshtest
