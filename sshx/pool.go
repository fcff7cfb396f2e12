package sshx

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// Pool hands out one Remote per host and closes them all at the end: one
// SSH connection per host for the whole run, whatever runs on it. A Pool is
// safe for concurrent use; whoever makes it must call Close.
type Pool struct {
	cfg   Config
	file  *clientConfigFile
	keys  hostKeys
	agent agentConn
	// starts holds a token per connection being opened (MaxStartups);
	// nil for no bound.
	starts chan struct{}

	mu     sync.Mutex
	hosts  map[string]*Remote // by spec, and by "jump:" + chain for jump hosts
	closed bool
	logMu  sync.Mutex
}

// NewPool returns a pool using cfg (copied; zero fields take their
// defaults). It reads the client config file now, so that a broken file is
// reported before anything connects. Nothing is dialled until a command
// runs.
func NewPool(cfg Config) (*Pool, error) {
	cfg.setDefaults()
	switch cfg.StrictHostKeyChecking {
	case "", StrictYes, StrictAcceptNew:
	default:
		return nil, fmt.Errorf("sshx: StrictHostKeyChecking %q: want %q or %q (InsecureIgnoreHostKey turns checking off)", cfg.StrictHostKeyChecking, StrictYes, StrictAcceptNew)
	}
	file, err := loadClientConfig(cfg.ConfigFile)
	if err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, file: file, hosts: map[string]*Remote{}}
	if cfg.MaxStartups > 0 {
		p.starts = make(chan struct{}, cfg.MaxStartups)
	}
	return p, nil
}

// Host returns the Remote for a host spec (see ParseSpec), resolved against
// the client config file. The same spec always gives the same Remote.
func (p *Pool) Host(spec string) (*Remote, error) {
	return p.host(spec, spec, nil)
}

// Hosts resolves several specs at once; the error names every bad one.
func (p *Pool) Hosts(specs []string) ([]Host, error) {
	var errs *multierror.Error
	out := make([]Host, 0, len(specs))
	for _, s := range specs {
		r, err := p.Host(s)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		out = append(out, r)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, err
	}
	return out, nil
}

// startTurn waits for a turn to open a connection (MaxStartups) and
// returns the function that ends it.
func (p *Pool) startTurn(ctx context.Context) (func(), error) {
	if p.starts == nil {
		return func() {}, nil
	}
	select {
	case p.starts <- struct{}{}:
		return sync.OnceFunc(func() { <-p.starts }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// jumpHost returns the Remote that reaches chain[len-1] through the hosts
// before it.
func (p *Pool) jumpHost(chain []string) (*Remote, error) {
	if len(chain) > 8 {
		return nil, fmt.Errorf("sshx: ProxyJump chain of %d hosts is too long", len(chain))
	}
	last := chain[len(chain)-1]
	return p.host("jump:"+strings.Join(chain, ","), last, chain[:len(chain)-1])
}

func (p *Pool) host(key, spec string, jumps []string) (*Remote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("sshx: pool closed")
	}
	if r, ok := p.hosts[key]; ok {
		return r, nil
	}
	ep, err := resolve(spec, &p.cfg, p.file)
	if err != nil {
		return nil, err
	}
	if jumps != nil {
		ep.ProxyJump = jumps
	}
	r := &Remote{pool: p, ep: ep, sem: make(chan struct{}, p.cfg.MaxSessions), jump: jumps != nil}
	p.hosts[key] = r
	return r, nil
}

// Stats returns the counters of every host the pool handed out, by spec.
func (p *Pool) Stats() map[string]Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Stats, len(p.hosts))
	for k, r := range p.hosts {
		out[k] = r.Stats()
	}
	return out
}

// Close closes every connection. Commands still running fail. It is safe
// to call more than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	hosts := make([]*Remote, 0, len(p.hosts))
	for _, r := range p.hosts {
		hosts = append(hosts, r)
	}
	p.mu.Unlock()
	var errs *multierror.Error
	for _, r := range hosts {
		if err := r.close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

func (p *Pool) logf(format string, args ...any) {
	if p.cfg.Log == nil {
		return
	}
	p.logMu.Lock()
	defer p.logMu.Unlock()
	fmt.Fprintf(p.cfg.Log, format+"\n", args...)
}

var _ io.Closer = (*Pool)(nil)
