package sshx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// HostKeyError reports a host key that known_hosts does not vouch for.
type HostKeyError struct {
	Host        string // the host as the user named it
	Addr        string // host:port that was dialled
	KeyType     string // type of the key the server offered, e.g. ssh-ed25519
	Fingerprint string // SHA256 fingerprint of the offered key
	File        string // the known_hosts file consulted
	Changed     bool   // true: a different key is recorded (possible attack); false: the host is unknown
}

func (e *HostKeyError) Error() string {
	hostArg := knownhosts.Normalize(e.Addr)
	if e.Changed {
		return fmt.Sprintf("sshx: %s (%s): HOST KEY CHANGED: the server offered %s %s, which is not the key recorded in %s; "+
			"someone may be intercepting the connection. If the host was reinstalled, verify the new key and remove the old one with: ssh-keygen -R %s -f %s",
			e.Host, e.Addr, e.KeyType, e.Fingerprint, e.File, Quote(hostArg), Quote(e.File))
	}
	return fmt.Sprintf("sshx: %s (%s): unknown host: %s has no key for it (server offered %s %s); "+
		"verify the key and add it, e.g. ssh-keyscan -p %s %s >> %s, or set StrictHostKeyChecking to accept-new",
		e.Host, e.Addr, e.File, e.KeyType, e.Fingerprint, portOf(e.Addr), Quote(hostOf(e.Addr)), Quote(e.File))
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "22"
	}
	return p
}

// hostKeys checks host keys against known_hosts files; it is shared by all
// hosts of a pool so that accept-new writes are serialised.
type hostKeys struct {
	mu  sync.Mutex
	dbs map[string]*knownhosts.HostKeyDB // by file list
}

func (hk *hostKeys) db(files []string) (*knownhosts.HostKeyDB, error) {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	key := fmt.Sprint(files)
	if db, ok := hk.dbs[key]; ok {
		return db, nil
	}
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sshx: known_hosts: %w", err)
		}
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("sshx: reading known_hosts %v: %w", existing, err)
	}
	if hk.dbs == nil {
		hk.dbs = map[string]*knownhosts.HostKeyDB{}
	}
	hk.dbs[key] = db
	return db, nil
}

// callback returns the host key callback and the key algorithms to offer
// for an endpoint: the algorithms of the keys already recorded, so that a
// host with both an RSA and an ed25519 key is checked against the one the
// file holds.
func (hk *hostKeys) callback(e Endpoint, insecure bool) (ssh.HostKeyCallback, []string, error) {
	if insecure {
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	db, err := hk.db(e.KnownHosts)
	if err != nil {
		return nil, nil, err
	}
	check := db.HostKeyCallback()
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		kerr := &HostKeyError{Host: e.Name, Addr: e.addr(), KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), File: e.KnownHosts[0]}
		switch {
		case knownhosts.IsHostKeyChanged(err):
			kerr.Changed = true
			return kerr
		case knownhosts.IsHostUnknown(err):
			if e.Strict != StrictAcceptNew {
				return kerr
			}
			return hk.record(e, hostname, remote, key)
		default:
			return fmt.Errorf("sshx: %s: checking host key: %w", e.Name, err)
		}
	}
	return cb, db.HostKeyAlgorithms(e.addr()), nil
}

// record appends a new host's key to the first known_hosts file.
func (hk *hostKeys) record(e Endpoint, hostname string, remote net.Addr, key ssh.PublicKey) error {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	file := e.KnownHosts[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("sshx: %s: recording host key: %w", e.Name, err)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("sshx: %s: recording host key: %w", e.Name, err)
	}
	werr := knownhosts.WriteKnownHost(f, hostname, remote, key)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("sshx: %s: recording host key in %s: %w", e.Name, file, werr)
	}
	delete(hk.dbs, fmt.Sprint(e.KnownHosts))
	return nil
}
