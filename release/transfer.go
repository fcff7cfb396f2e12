package release

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A prepare phase may ask the deploying machine for two things while it
// runs, and reads the answers on its standard input (hostsh/talk.sh): a
// slot to download from a service the whole fleet shares (Fleet.FetchLimit
// of them across the fleet), and, with Options.PushFrom, the release's
// commits as a git bundle of what the host misses. A transfer holds what
// the hosts of one Deploy share for that: the slots, and the bundles made
// so far (hosts holding the same commits get the same bundle, made once).
type transfer struct {
	slots chan struct{} // one per download at once; nil for no limit
	push  *pusher       // nil when the hosts pull from SCM
}

// newTransfer returns the transfer of a run whose context is ctx: a
// bundle that hosts share is made under it, not under the first asking
// host's, whose own timeout must not fail the others.
func newTransfer(ctx context.Context, limit int, pushFrom string) *transfer {
	x := &transfer{}
	if limit > 0 {
		x.slots = make(chan struct{}, limit)
	}
	if pushFrom != "" {
		x.push = &pusher{ctx: ctx, repo: pushFrom, bundles: map[string]*bundle{}}
	}
	return x
}

// close removes the bundles.
func (x *transfer) close() {
	if x.push != nil {
		x.push.close()
	}
}

// transfers sets up the transfer of a Deploy when it needs one; the func
// it returns ends it.
func (f *Fleet) transfers(ctx context.Context) (stop func()) {
	o := f.Options
	if o.xfer != nil || (f.FetchLimit <= 0 && o.PushFrom == "") {
		return func() {}
	}
	x := newTransfer(ctx, f.FetchLimit, o.PushFrom)
	o.xfer = x
	return func() {
		o.xfer = nil
		x.close()
	}
}

// talk answers one host's prepare script (see hostsh/talk.sh). Its reader
// end, r, is the command's standard input; the script's questions arrive
// through ask, from the script's output.
type talk struct {
	ctx  context.Context
	x    *transfer
	t    Target
	r, w *os.File

	asks   chan []string
	done   chan struct{} // closed when the command has ended
	served chan struct{} // closed when serve returns
	held   bool          // holds a slot of x.slots; only serve touches it
}

// talk starts answering a host's script about t. The caller must call
// stop once the command has ended.
func (x *transfer) talk(ctx context.Context, t Target) (*talk, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("release: a pipe for the host's answers: %w", err)
	}
	k := &talk{ctx: ctx, x: x, t: t, r: r, w: w, asks: make(chan []string, 16), done: make(chan struct{}), served: make(chan struct{})}
	go k.serve()
	return k, nil
}

// ask is told of each "ask" and "ungate" line of the script's output. It
// must not block: it is called while the output is parsed.
func (k *talk) ask(fields []string) {
	select {
	case k.asks <- fields:
	default:
		// The script asks one thing at a time and waits for the
		// answer: more than the buffer cannot come.
	}
}

// stop ends the talk once the command has ended: a write in progress is
// cut (the script is gone), and a slot still held is given back.
func (k *talk) stop() {
	close(k.done)
	k.w.Close()
	<-k.served
	k.r.Close()
}

func (k *talk) serve() {
	defer close(k.served)
	defer func() {
		if k.held {
			<-k.x.slots
		}
	}()
	for {
		select {
		case <-k.done:
			return
		case f := <-k.asks:
			k.answer(f)
		}
	}
}

func (k *talk) answer(f []string) {
	if f[0] == "ungate" {
		if k.held {
			k.held = false
			<-k.x.slots
		}
		return
	}
	if len(f) < 2 {
		return
	}
	switch f[1] {
	case "gate":
		if k.x.slots == nil {
			k.send("go\n")
			return
		}
		if !k.held {
			select {
			case k.x.slots <- struct{}{}:
				k.held = true
			case <-k.done:
				return
			case <-k.ctx.Done():
				return
			}
		}
		k.send("go\n")
	case "have":
		if k.x.push == nil {
			k.send("fail the deploying machine does not push releases (Options.PushFrom is empty)\n")
			return
		}
		var haves []string
		if len(f) > 2 {
			haves = strings.Fields(f[2])
		}
		b, err := k.x.push.bundle(k.ctx, k.t, haves)
		if err != nil {
			k.send("fail " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n")
			return
		}
		k.sendFile(b)
	}
}

// send writes an answer; a failure means the script is gone, which its
// command's error tells.
func (k *talk) send(s string) { k.w.WriteString(s) }

func (k *talk) sendFile(b *bundle) {
	f, err := os.Open(b.path)
	if err != nil {
		k.send("fail release: the bundle for the host: " + err.Error() + "\n")
		return
	}
	defer f.Close()
	if _, err := k.w.WriteString("bundle " + strconv.FormatInt(b.size, 10) + "\n"); err != nil {
		return
	}
	io.Copy(k.w, f)
}

// pusher makes the bundles a push sends, from the local repository repo.
// A bundle needs refs: they live in a bare repository of its own (dir)
// that borrows repo's objects (objects/info/alternates), so that repo
// itself is never written to.
type pusher struct {
	ctx  context.Context // the run's: bundles are made under it
	repo string

	setup    sync.Once
	dir      string // the temporary directory: the bare repository, the bundles
	setupErr error

	mu      sync.Mutex
	target  string   // the commit refs/magefab/release points to in dir
	refs    []string // the refs a bundle of target holds
	bundles map[string]*bundle
	n       int
}

// bundle is a bundle file, made once.
type bundle struct {
	once sync.Once
	path string
	size int64
	err  error
}

func (p *pusher) close() {
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// git runs git with args in the bare repository (or, with repo, in the
// local repository) and returns its output.
func (p *pusher) git(ctx context.Context, inRepo bool, stdin string, args ...string) (string, error) {
	if inRepo {
		args = append([]string{"-C", p.repo}, args...)
	} else {
		args = append([]string{"--git-dir", filepath.Join(p.dir, "repo.git")}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", &GitError{Args: args, Stderr: excerpt(errb.String()), Err: err}
	}
	return strings.TrimSpace(out.String()), nil
}

// init makes the bare repository that borrows the local repository's
// objects. A shallow repository cannot push: it lacks the history a host
// may need.
func (p *pusher) init(ctx context.Context) error {
	p.setup.Do(func() {
		shallow, err := p.git(ctx, true, "", "rev-parse", "--is-shallow-repository")
		if err != nil {
			p.setupErr = fmt.Errorf("release: push: %s is not a git repository: %w", p.repo, err)
			return
		}
		if shallow == "true" {
			p.setupErr = fmt.Errorf("release: push: %s is a shallow clone, and a host may need history it lacks: run git fetch --unshallow there (or clone it whole), then deploy again", p.repo)
			return
		}
		common, err := p.git(ctx, true, "", "rev-parse", "--path-format=absolute", "--git-common-dir")
		if err != nil {
			p.setupErr = fmt.Errorf("release: push: %w", err)
			return
		}
		if p.dir, err = os.MkdirTemp("", "magefab-push-"); err != nil {
			p.setupErr = fmt.Errorf("release: push: %w", err)
			return
		}
		if _, err := p.git(ctx, true, "", "init", "-q", "--bare", filepath.Join(p.dir, "repo.git")); err != nil {
			p.setupErr = fmt.Errorf("release: push: %w", err)
			return
		}
		alt := filepath.Join(p.dir, "repo.git", "objects", "info", "alternates")
		if err := os.WriteFile(alt, []byte(filepath.Join(common, "objects")+"\n"), 0o644); err != nil {
			p.setupErr = fmt.Errorf("release: push: %w", err)
		}
	})
	return p.setupErr
}

// refsFor points refs/magefab/release at t's commit, and refs/tags/NAME at
// each tag that names the commit or is the nearest before it (so that git
// describe on the host names the release as it does here), and returns
// them. Called with p.mu held.
func (p *pusher) refsFor(ctx context.Context, t Target) ([]string, error) {
	if p.target == t.SHA {
		return p.refs, nil
	}
	if _, err := p.git(ctx, true, "", "cat-file", "-e", t.SHA+"^{commit}"); err != nil {
		return nil, fmt.Errorf("release: push: %s (%s) is not in the local repository %s: fetch it there, then deploy again", t.Name, t.Short(), p.repo)
	}
	if _, err := p.git(ctx, false, "", "update-ref", "refs/magefab/release", t.SHA); err != nil {
		return nil, fmt.Errorf("release: push: %w", err)
	}
	refs := []string{"refs/magefab/release"}
	var tags []string
	if out, err := p.git(ctx, true, "", "tag", "--points-at", t.SHA); err == nil && out != "" {
		tags = strings.Split(out, "\n")
	}
	if near, err := p.git(ctx, true, "", "describe", "--tags", "--abbrev=0", t.SHA); err == nil && near != "" && !slices.Contains(tags, near) {
		tags = append(tags, near)
	}
	for _, tag := range tags {
		id, err := p.git(ctx, true, "", "rev-parse", "--verify", "-q", "refs/tags/"+tag)
		if err != nil {
			continue
		}
		if _, err := p.git(ctx, false, "", "update-ref", "refs/tags/"+tag, id); err != nil {
			return nil, fmt.Errorf("release: push: %w", err)
		}
		refs = append(refs, "refs/tags/"+tag)
	}
	p.target, p.refs = t.SHA, refs
	return refs, nil
}

// bundle returns the bundle of t for a host holding the commits haves: a
// thin one without what the haves known here hold, or a whole one when
// none is known. Hosts with the same haves share one.
func (p *pusher) bundle(ctx context.Context, t Target, haves []string) (*bundle, error) {
	if err := p.init(p.ctx); err != nil {
		return nil, err
	}
	haves = slices.Clone(haves)
	slices.Sort(haves)
	haves = slices.Compact(haves)
	key := t.SHA + " " + strings.Join(haves, " ")
	p.mu.Lock()
	refs, err := p.refsFor(ctx, t)
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	b := p.bundles[key]
	if b == nil {
		b = &bundle{}
		p.bundles[key] = b
		p.n++
		b.path = filepath.Join(p.dir, fmt.Sprintf("%d.bundle", p.n))
	}
	p.mu.Unlock()
	b.once.Do(func() {
		b.err = p.make(p.ctx, b, refs, haves)
	})
	return b, b.err
}

// make writes the bundle b of refs without what the known haves hold.
func (p *pusher) make(ctx context.Context, b *bundle, refs, haves []string) error {
	known, err := p.known(ctx, haves)
	if err != nil {
		return err
	}
	args := append([]string{"bundle", "create", "-q", b.path}, refs...)
	for _, h := range known {
		args = append(args, "^"+h)
	}
	if _, err := p.git(ctx, false, "", args...); err != nil {
		return fmt.Errorf("release: push: making the bundle: %w", err)
	}
	st, err := os.Stat(b.path)
	if err != nil {
		return fmt.Errorf("release: push: %w", err)
	}
	b.size = st.Size()
	return nil
}

// known returns the haves that are commits of the local repository: only
// they can be left out of a bundle.
func (p *pusher) known(ctx context.Context, haves []string) ([]string, error) {
	var in strings.Builder
	for _, h := range haves {
		if isObjectID(h) {
			in.WriteString(h + "\n")
		}
	}
	if in.Len() == 0 {
		return nil, nil
	}
	out, err := p.git(ctx, false, in.String(), "cat-file", "--batch-check=%(objectname) %(objecttype)")
	if err != nil {
		return nil, fmt.Errorf("release: push: %w", err)
	}
	var known []string
	for _, l := range strings.Split(out, "\n") {
		if id, kind, ok := strings.Cut(l, " "); ok && kind == "commit" {
			known = append(known, id)
		}
	}
	return known, nil
}

// isObjectID says whether s is a git object id as git prints it: 40 or
// 64 lower-case hex digits.
func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !isHex(c) || ('A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
