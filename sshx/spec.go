package sshx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kevinburke/ssh_config"
)

// Spec is a host as a user writes it: "host", "host:port", "user@host",
// "user@host:port" or "[ipv6]:port". Host may be an alias of the client
// config file.
type Spec struct {
	User string // "" when the spec names none
	Host string // host name, address or alias, without brackets
	Port int    // 0 when the spec names none
}

// ParseSpec parses a host spec. It refuses empty parts, whitespace, control
// characters, a leading '-' (which ssh tools read as an option) and ports
// outside 1..65535.
func ParseSpec(s string) (Spec, error) {
	bad := func(why string) (Spec, error) {
		return Spec{}, fmt.Errorf("sshx: host %q: %s (want host, host:port, user@host:port or [ipv6]:port)", truncate(s, 80), why)
	}
	if s == "" {
		return bad("empty")
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return bad("contains a space or control character")
		}
	}
	var sp Spec
	rest := s
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		sp.User, rest = rest[:i], rest[i+1:]
		if sp.User == "" {
			return bad("empty user before @")
		}
		if strings.HasPrefix(sp.User, "-") {
			return bad("user starts with '-'")
		}
	}
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("missing ']'")
		}
		sp.Host = rest[1:end]
		tail := rest[end+1:]
		if tail != "" {
			if !strings.HasPrefix(tail, ":") {
				return bad("unexpected text after ']'")
			}
			p, err := parsePort(tail[1:])
			if err != nil {
				return bad(err.Error())
			}
			sp.Port = p
		}
	case strings.Count(rest, ":") == 1:
		h, p, _ := strings.Cut(rest, ":")
		port, err := parsePort(p)
		if err != nil {
			return bad(err.Error())
		}
		sp.Host, sp.Port = h, port
	default:
		// No port, or a bare IPv6 address.
		sp.Host = rest
	}
	if sp.Host == "" {
		return bad("empty host")
	}
	if strings.HasPrefix(sp.Host, "-") {
		return bad("host starts with '-'")
	}
	if strings.ContainsAny(sp.Host, "/\\'\"`$;&|<>(){}*?!#") {
		return bad("host contains a character that no host name has")
	}
	return sp, nil
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number in 1..65535", p)
	}
	return n, nil
}

// String formats the spec back, e.g. "deploy@[::1]:2222".
func (s Spec) String() string {
	h := s.Host
	if s.Port != 0 {
		h = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	} else if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if s.User != "" {
		return s.User + "@" + h
	}
	return h
}

// Endpoint is a host spec resolved against the client config file and the
// Config: everything needed to connect.
type Endpoint struct {
	Name           string        // the spec as given, used in output and errors
	Alias          string        // the host part of the spec, as looked up in the config file
	HostName       string        // what is dialled
	Port           int           // what is dialled
	User           string        // login user
	IdentityFiles  []string      // tried in order, after the agent
	IdentitiesOnly bool          // only agent keys matching IdentityFiles are used
	KnownHosts     []string      // files checked; the first is where accept-new records
	Strict         string        // StrictYes or StrictAcceptNew
	ProxyJump      []string      // hosts to go through, in order
	KeepAlive      time.Duration // between keepalives on an idle connection; negative: none
	KeepAliveMax   int           // keepalives missed in a row before the connection is closed
}

// addr is HostName:Port, as dialled.
func (e Endpoint) addr() string { return net.JoinHostPort(e.HostName, strconv.Itoa(e.Port)) }

// clientConfigFile is the parsed OpenSSH client config, or nil for none.
type clientConfigFile struct {
	path string
	cfg  *ssh_config.Config
}

func loadClientConfig(path string) (*clientConfigFile, error) {
	if path == "none" {
		return &clientConfigFile{path: path}, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &clientConfigFile{path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sshx: reading ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("sshx: parsing ssh config %s: %w", path, err)
	}
	return &clientConfigFile{path: path, cfg: cfg}, nil
}

func (c *clientConfigFile) get(alias, key string) string {
	if c == nil || c.cfg == nil {
		return ""
	}
	v, err := c.cfg.Get(alias, key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

// forHost narrows the file to the Host blocks that match alias, in their
// order, so that reading a host's dozen settings matches each block of
// the file once instead of once per setting: a file that names every host
// of a large fleet would otherwise cost each host time in proportion to
// the fleet. What get and getAll return is the same.
func (c *clientConfigFile) forHost(alias string) *clientConfigFile {
	if c == nil || c.cfg == nil {
		return c
	}
	var hosts []*ssh_config.Host
	for _, h := range c.cfg.Hosts {
		if h.Matches(alias) {
			hosts = append(hosts, h)
		}
	}
	return &clientConfigFile{path: c.path, cfg: &ssh_config.Config{Hosts: hosts}}
}

// number reads a whole-number setting of at least min: ok is false when
// the file does not set it, and a value that is no such number is an
// error naming the host (spec), the setting, the file and want.
func (c *clientConfigFile) number(spec, alias, key string, min int, want string) (n int, ok bool, err error) {
	v := c.get(alias, key)
	if v == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil || n < min {
		return 0, false, fmt.Errorf("sshx: %s: %s %q in %s: want %s", spec, key, v, c.path, want)
	}
	return n, true, nil
}

func (c *clientConfigFile) getAll(alias, key string) []string {
	if c == nil || c.cfg == nil {
		return nil
	}
	v, err := c.cfg.GetAll(alias, key)
	if err != nil {
		return nil
	}
	return v
}

// resolve turns a spec into an endpoint. Precedence: the spec itself, then
// the client config file, then the Config, then the built-in defaults.
func resolve(spec string, cfg *Config, file *clientConfigFile) (Endpoint, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return Endpoint{}, err
	}
	e := Endpoint{Name: spec, Alias: sp.Host, HostName: sp.Host, User: sp.User, Port: sp.Port}
	file = file.forHost(sp.Host)
	if hn := file.get(sp.Host, "HostName"); hn != "" {
		e.HostName = strings.ReplaceAll(hn, "%h", sp.Host)
	}
	if e.Port == 0 {
		if p := file.get(sp.Host, "Port"); p != "" {
			n, err := parsePort(p)
			if err != nil {
				return Endpoint{}, fmt.Errorf("sshx: %s: Port in %s: %w", spec, file.path, err)
			}
			e.Port = n
		}
	}
	if e.Port == 0 {
		e.Port = cfg.Port
	}
	if e.User == "" {
		e.User = file.get(sp.Host, "User")
	}
	if e.User == "" {
		e.User = cfg.User
	}
	tokens := func(s string) string {
		r := strings.NewReplacer("%%", "%", "%d", homeDir(), "%u", localUser(), "%h", e.HostName, "%r", e.User, "%p", strconv.Itoa(e.Port), "%n", sp.Host)
		return expandHome(r.Replace(s))
	}
	for _, f := range cfg.IdentityFiles {
		e.IdentityFiles = append(e.IdentityFiles, tokens(f))
	}
	for _, f := range file.getAll(sp.Host, "IdentityFile") {
		if strings.EqualFold(f, "none") {
			continue
		}
		e.IdentityFiles = append(e.IdentityFiles, tokens(f))
	}
	e.IdentitiesOnly = strings.EqualFold(file.get(sp.Host, "IdentitiesOnly"), "yes")
	if kh := file.get(sp.Host, "UserKnownHostsFile"); kh != "" && !strings.EqualFold(kh, "none") {
		for _, f := range strings.Fields(kh) {
			e.KnownHosts = append(e.KnownHosts, tokens(f))
		}
	} else {
		e.KnownHosts = []string{cfg.KnownHostsFile}
	}
	e.Strict = cfg.StrictHostKeyChecking
	if e.Strict == "" {
		switch strings.ToLower(file.get(sp.Host, "StrictHostKeyChecking")) {
		case "accept-new", "no", "off":
			e.Strict = StrictAcceptNew
		default: // "yes", "ask" (there is nobody to ask), unset
			e.Strict = StrictYes
		}
	}
	if e.Strict != StrictYes && e.Strict != StrictAcceptNew {
		return Endpoint{}, fmt.Errorf("sshx: StrictHostKeyChecking %q: want %q or %q", e.Strict, StrictYes, StrictAcceptNew)
	}
	e.KeepAlive, e.KeepAliveMax = cfg.KeepAlive, 3
	if n, ok, err := file.number(spec, sp.Host, "ServerAliveInterval", 0, "a number of seconds (0 for none)"); err != nil {
		return Endpoint{}, err
	} else if ok {
		e.KeepAlive = time.Duration(n) * time.Second
		if n == 0 {
			e.KeepAlive = -1
		}
	}
	if n, ok, err := file.number(spec, sp.Host, "ServerAliveCountMax", 1, "a number of keepalives, at least 1"); err != nil {
		return Endpoint{}, err
	} else if ok {
		e.KeepAliveMax = n
	}
	if pj := file.get(sp.Host, "ProxyJump"); pj != "" && !strings.EqualFold(pj, "none") {
		for _, j := range strings.Split(pj, ",") {
			j = strings.TrimPrefix(strings.TrimSpace(j), "ssh://")
			if j != "" {
				e.ProxyJump = append(e.ProxyJump, j)
			}
		}
	}
	return e, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
