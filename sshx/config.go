package sshx

import (
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"context"

	"golang.org/x/crypto/ssh/agent"
)

// Host key checking modes, the values of Config.StrictHostKeyChecking and of
// StrictHostKeyChecking in an OpenSSH client config file.
const (
	// StrictYes refuses a host whose key is not in known_hosts, and a host
	// whose key differs from the one recorded. It is the default.
	StrictYes = "yes"
	// StrictAcceptNew records the key of a host not yet in known_hosts and
	// accepts it; a changed key is still refused.
	StrictAcceptNew = "accept-new"
)

// Config says how a Pool finds, authenticates and checks hosts. The zero
// value is ready to use: it reads ~/.ssh/config and ~/.ssh/known_hosts,
// authenticates with the SSH agent and the default identity files, and
// refuses unknown or changed host keys. A Config must not be modified after
// it has been passed to NewPool.
type Config struct {
	// User is the login user for hosts whose spec and client config file
	// name none. Empty means the local user ($USER).
	User string

	// Port is the port for hosts whose spec and client config file name
	// none. Zero means 22.
	Port int

	// ConfigFile is the OpenSSH client config file whose Host aliases are
	// honoured (HostName, Port, User, IdentityFile, IdentitiesOnly,
	// UserKnownHostsFile, StrictHostKeyChecking, ProxyJump,
	// ServerAliveInterval, ServerAliveCountMax). Empty means
	// ~/.ssh/config; "none" reads no file. A missing file is no error.
	ConfigFile string

	// KnownHostsFile is where host keys are checked (and, under
	// accept-new, recorded). Empty means ~/.ssh/known_hosts. A
	// UserKnownHostsFile in the client config file takes precedence.
	KnownHostsFile string

	// IdentityFiles are private keys tried after the agent's keys, before
	// those named by the client config file. When neither names any, the
	// default files ~/.ssh/id_ed25519, id_ecdsa and id_rsa that exist are
	// tried.
	IdentityFiles []string

	// StrictHostKeyChecking is StrictYes or StrictAcceptNew. Empty means
	// the client config file's setting for the host, else StrictYes. A
	// config file's "no" or "off" is taken as accept-new: a changed key is
	// never accepted.
	StrictHostKeyChecking string

	// InsecureIgnoreHostKey accepts any host key without checking. It
	// exists for throwaway test hosts; nothing sets it by default.
	InsecureIgnoreHostKey bool

	// ConnectTimeout bounds the TCP dial and the SSH handshake together:
	// a host that accepts TCP but never speaks fails after it. Zero means
	// 10 seconds.
	ConnectTimeout time.Duration

	// MaxStartups bounds the connections being opened (TCP dial, SSH
	// handshake and authentication) at once, over the whole pool; the
	// others wait for a turn, and their ConnectTimeout starts with it.
	// Hundreds of handshakes started in the same instant are what a
	// firewall, a NAT, a bastion or a busy host refuses or resets. Zero
	// means 32; negative means no bound.
	MaxStartups int

	// KeepAlive is the interval between keepalive requests on an idle
	// connection; a connection that misses three in a row is closed, and
	// its commands fail. Zero means 15 seconds; negative disables them.
	// A host's ServerAliveInterval and ServerAliveCountMax in the client
	// config file take precedence (ServerAliveInterval 0: none).
	KeepAlive time.Duration

	// MaxSessions bounds the commands running at once on one connection
	// (OpenSSH's MaxSessions defaults to 10). Zero means 8.
	MaxSessions int

	// Agent is the SSH agent used for authentication and forwarding. Nil
	// means the agent at $SSH_AUTH_SOCK, if any.
	Agent agent.ExtendedAgent

	// Dial opens the TCP connection to a host. Nil means net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Log receives one line per connection opened or closed. Nil discards.
	Log io.Writer
}

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = 22
	}
	if c.User == "" {
		c.User = localUser()
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.MaxStartups == 0 {
		c.MaxStartups = 32
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 8
	}
	if c.ConfigFile == "" {
		c.ConfigFile = filepath.Join(homeDir(), ".ssh", "config")
	}
	if c.KnownHostsFile == "" {
		c.KnownHostsFile = filepath.Join(homeDir(), ".ssh", "known_hosts")
	}
	c.ConfigFile = expandHome(c.ConfigFile)
	c.KnownHostsFile = expandHome(c.KnownHostsFile)
	if c.Dial == nil {
		d := &net.Dialer{KeepAlive: -1}
		c.Dial = d.DialContext
	}
}

// expandHome replaces a leading "~" or "~/" in p by $HOME.
func expandHome(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

func homeDir() string {
	if h := os.Getenv("HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "/"
}

func localUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}
