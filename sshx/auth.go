package sshx

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AuthError reports that a host refused every key offered, or that no key
// could be offered at all.
type AuthError struct {
	Host    string   // the host as the user named it
	User    string   // the login user
	Tried   []string // what was offered: "agent key ssh-ed25519 SHA256:..", "~/.ssh/id_ed25519"
	Skipped []string // identity files that could not be used, with the reason
	Err     error    // the handshake error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sshx: %s: authentication as %q failed", e.Host, e.User)
	if len(e.Tried) == 0 {
		b.WriteString("; no key to offer")
	} else {
		fmt.Fprintf(&b, "; tried publickey with %s", strings.Join(e.Tried, ", "))
	}
	if len(e.Skipped) > 0 {
		fmt.Fprintf(&b, "; skipped %s", strings.Join(e.Skipped, "; "))
	}
	b.WriteString(". Load a key into the agent (ssh-add), or set IdentityFiles / IdentityFile in the ssh config, and check the user")
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.Err }

// agentConn connects to $SSH_AUTH_SOCK once per pool, on first use.
type agentConn struct {
	once  sync.Once
	agent agent.ExtendedAgent
	err   error
}

func (a *agentConn) get(given agent.ExtendedAgent) (agent.ExtendedAgent, error) {
	if given != nil {
		return given, nil
	}
	a.once.Do(func() {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			a.err = fmt.Errorf("sshx: SSH_AUTH_SOCK=%s: %w", sock, err)
			return
		}
		a.agent = agent.NewClient(c)
	})
	return a.agent, a.err
}

// signerSet gathers the keys to offer to one endpoint, remembering what was
// offered and what was skipped for the error message.
type signerSet struct {
	signers []ssh.Signer
	tried   []string
	skipped []string
}

func defaultIdentityFiles() []string {
	var out []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := expandHome("~/.ssh/" + n)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// collectSigners returns the agent's keys (all of them, or under
// IdentitiesOnly those matching an identity file) followed by the keys of
// the identity files that are not in the agent. An unreadable agent is an
// error; an identity file that cannot be used is skipped with its reason,
// which the AuthError shows if authentication then fails.
func collectSigners(e Endpoint, ag agent.ExtendedAgent) (*signerSet, error) {
	set := &signerSet{}
	files := e.IdentityFiles
	explicit := len(files) > 0
	if !explicit {
		files = defaultIdentityFiles()
	}
	type fileKey struct {
		path string
		pub  ssh.PublicKey // nil if unknown
	}
	var wantPub []fileKey
	for _, f := range files {
		fk := fileKey{path: f}
		if b, err := os.ReadFile(f + ".pub"); err == nil {
			if pk, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
				fk.pub = pk
			}
		}
		wantPub = append(wantPub, fk)
	}
	var agentKeys []ssh.PublicKey
	if ag != nil {
		signers, err := ag.Signers()
		if err != nil {
			return nil, fmt.Errorf("sshx: listing keys of the SSH agent: %w", err)
		}
		for _, s := range signers {
			if e.IdentitiesOnly && explicit && !matchesAny(s.PublicKey(), wantPub, func(k fileKey) ssh.PublicKey { return k.pub }) {
				continue
			}
			set.signers = append(set.signers, s)
			set.tried = append(set.tried, "agent key "+s.PublicKey().Type()+" "+ssh.FingerprintSHA256(s.PublicKey()))
			agentKeys = append(agentKeys, s.PublicKey())
		}
	}
	for _, fk := range wantPub {
		if fk.pub != nil && containsKey(agentKeys, fk.pub) {
			continue // the agent already offers it
		}
		s, err := loadIdentity(fk.path)
		if err != nil {
			if explicit || !errors.Is(err, os.ErrNotExist) {
				set.skipped = append(set.skipped, err.Error())
			}
			continue
		}
		if containsKey(agentKeys, s.PublicKey()) {
			continue
		}
		set.signers = append(set.signers, s)
		set.tried = append(set.tried, fk.path)
	}
	return set, nil
}

func matchesAny[T any](k ssh.PublicKey, list []T, pub func(T) ssh.PublicKey) bool {
	for _, x := range list {
		if p := pub(x); p != nil && bytes.Equal(p.Marshal(), k.Marshal()) {
			return true
		}
	}
	return false
}

func containsKey(keys []ssh.PublicKey, k ssh.PublicKey) bool {
	return matchesAny(k, keys, func(p ssh.PublicKey) ssh.PublicKey { return p })
}

// loadIdentity reads a private key file. Like OpenSSH, it refuses a file
// that others can read.
func loadIdentity(path string) (ssh.Signer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %04o are too open: a private key must not be accessible by others (chmod 600 %s)", path, st.Mode().Perm(), Quote(path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("%s: needs a passphrase; add it to the agent first: ssh-add %s", path, Quote(path))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not a usable private key: %w", path, err)
	}
	return s, nil
}
