// Package sshx runs commands on hosts, over SSH or locally, for tools that
// work on fleets. It knows nothing of deploys.
//
// # Hosts and the pool
//
// A Pool turns host specs ("web1", "deploy@10.0.0.5:2222", "[::1]:22", or
// an alias of the OpenSSH client config file) into Remotes. Each Remote
// opens one SSH connection, lazily, on its first command, and every later
// command is a session multiplexed on it. Pool.Close closes them all
// cleanly: each connection's sending side first, then what its host still
// sends is read to the end, the hosts behind a jump host before it, so
// that no sshd logs a reset. A program that cannot tell whether another
// command follows (a mage target) calls Pool.Quiet at its end instead:
// no keepalive is sent until the next command, and those in flight are
// answered, so the process may exit with the connections open. The
// client config file is honoured for HostName, Port, User, IdentityFile,
// IdentitiesOnly, UserKnownHostsFile, StrictHostKeyChecking, ProxyJump,
// ServerAliveInterval and ServerAliveCountMax; "~" means $HOME.
//
// # Jump hosts
//
// Hosts behind a jump host (ProxyJump) share one connection to it: however
// many connect at once, one dial is in flight, and each host is a channel
// on that connection, so a bastion's sshd sees one login for the whole
// run, far below its MaxStartups. A connection to the jump host that dies
// is dialled again, once for all the hosts behind it, when they next
// connect. A jump host that fails (refused, unknown or changed key,
// authentication, no answer) is not dialled again by the pool: every host
// behind it gets the same *JumpError at once, naming the jump host, its
// address and the host, rather than a failed login per host, which a
// guard such as fail2ban takes for an attack. A jump host that will not
// or cannot forward (AllowTcpForwarding no, the host down) is a
// *JumpError too, with Forward set.
//
// # Security
//
// Host keys are checked against known_hosts: an unknown host is refused
// unless StrictHostKeyChecking is accept-new, and a changed key is always
// refused (*HostKeyError). Keys come from the SSH agent and identity files;
// a key file others can read, or one that needs a passphrase the agent does
// not hold, is skipped and named in the *AuthError if authentication then
// fails. Every value that reaches a shell goes through Quote.
//
// # Commands
//
// Cmd mirrors os/exec.Cmd: Stdin, Stdout, Stderr, Dir, Env, plus Sudo (sudo
// -n: a password prompt is ErrSudoPassword, never a hang) and ForwardAgent.
// Its context bounds it: on cancel the remote command's whole process group
// is signalled and Wait returns within two seconds. A non-zero exit is an
// *ExitError with the status and the end of stderr. Local runs the same
// Cmd on this machine with /bin/sh. Host.Upload and UploadFile write a file
// atomically: a reader never sees it half written.
//
// # Fleets
//
// Each runs a function on many hosts with bounded parallelism and returns
// per-host results plus one error naming every failed host (*HostError,
// reachable with errors.As). Console prefixes live output with the host
// name, a whole line at a time; SyncWriter lets many commands share one
// writer. Remote.Stats counts connections, sessions and bytes per host.
package sshx
