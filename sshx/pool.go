package sshx

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

	// Keepalives (see Quiet): quiet stops new ones until the next
	// command, pings counts those awaiting an answer, and idle is closed
	// when pings falls to zero. pingMu guards pings and idle, and every
	// change of quiet (wake reads it without the lock first).
	pingMu sync.Mutex
	quiet  atomic.Bool
	pings  int
	idle   chan struct{}
}

// closeDrain bounds how long Close reads what a host still sends after
// the connection's sending side is closed (see sshConn.shutdown).
const closeDrain = time.Second

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

// maxJumpChain is the most hosts a ProxyJump chain may go through.
const maxJumpChain = 8

// jumpHost returns the Remote that reaches chain[len-1] through the hosts
// before it.
func (p *Pool) jumpHost(chain []string) (*Remote, error) {
	if len(chain) > maxJumpChain {
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

// Close closes every connection, cleanly: each one's sending side first,
// then what its host still sends is read until the host closes too (at
// most a second), so that no host logs a reset. The hosts behind a jump
// host close before it, and a jump host before the one it is reached
// through; the hosts at one level close at once. Commands still running
// fail. It is safe to call more than once.
func (p *Pool) Close() error {
	levels := make([][]Host, maxJumpChain+2)
	p.mu.Lock()
	p.closed = true
	for _, r := range p.hosts {
		l := closeLevel(r)
		levels[l] = append(levels[l], r)
	}
	p.mu.Unlock()
	p.stopPings()
	var results []Result[struct{}]
	for _, level := range levels {
		rs, _ := Each(context.Background(), level, 0, func(_ context.Context, h Host) (struct{}, error) {
			return struct{}{}, h.(*Remote).close(closeDrain)
		})
		results = append(results, rs...)
	}
	return Errors(results)
}

// closeLevel orders Close, lowest first: the hosts (0) before the jump
// hosts, a jump host reached through k others at level maxJumpChain+1−k.
func closeLevel(r *Remote) int {
	if !r.jump {
		return 0
	}
	return maxJumpChain + 1 - len(r.ep.ProxyJump)
}

// Quiet makes the pool's connections quiet until its next command: it
// stops their keepalives and waits until those already sent are
// answered, or ctx ends. A process may then exit with the connections
// open and nothing on its way to it: a message arriving at a socket its
// exit closed is answered with a reset, which the host's sshd logs as an
// error. A program that cannot Close its pool at its end (it does not
// know whether another command follows) calls Quiet instead.
func (p *Pool) Quiet(ctx context.Context) error {
	idle := p.stopPings()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopPings stops new keepalives and returns a channel closed when
// none awaits its answer any more, nil when none does now.
func (p *Pool) stopPings() <-chan struct{} {
	p.pingMu.Lock()
	defer p.pingMu.Unlock()
	p.quiet.Store(true)
	if p.pings == 0 {
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

// wake lets keepalives go again after Quiet: a command is about to run.
func (p *Pool) wake() {
	if !p.quiet.Load() {
		return
	}
	p.pingMu.Lock()
	p.quiet.Store(false)
	p.pingMu.Unlock()
}

// ping takes a keepalive's turn: false while the pool is quiet.
func (p *Pool) ping() bool {
	p.pingMu.Lock()
	defer p.pingMu.Unlock()
	if p.quiet.Load() {
		return false
	}
	p.pings++
	return true
}

// pinged ends a keepalive's turn, when it has been answered (or its
// connection ended).
func (p *Pool) pinged() {
	p.pingMu.Lock()
	defer p.pingMu.Unlock()
	p.pings--
	if p.pings == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
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
