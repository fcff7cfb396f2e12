package release

import (
	"context"
	"errors"
	"strconv"

	"github.com/magefab/magefab/sshx"
)

// runWith runs script on h with its inputs in and texts, after the inputs
// every phase reads (see hostsh/lib.sh) and the project's own environment
// (o.Env), parsing its output. With talker (not nil) making the talk that
// answers the script's questions (hostsh/talk.sh) on its standard input:
// a command with an input is not watched by sshx (see sshx.Cmd.Stdin), so
// the script watches its input itself, and stops when it ends before the
// script does.
//
// A host over SSH runs the script and texts from its script cache (see
// scriptcache.go): one session when it holds them; when it does not, that
// session ends at once with exitScriptMissing and no output, and a second
// one sends them, stores them and runs the phase. Only the second
// session's output counts then. Each session gets a talk of its own:
// x/crypto/ssh copies a session's input in a goroutine that may still be
// reading the first talk's pipe after that session ended, and would take
// an answer meant for the second.
func runWith(ctx context.Context, h sshx.Host, o *Options, script *hostText, texts []textInput, in vars, forwardAgent bool, talker func() (*talk, error)) (*scriptOutput, error) {
	if o.leases != nil {
		o.leases.begin(h)
		defer o.leases.end(h)
	}
	var env vars
	env.set("MF_ROOT", o.Layout.Root())
	env.flag("MF_SUDO", o.Sudo)
	env.set("MF_RUN_ID", o.RunID)
	env.set("MF_CURRENT", o.Layout.Current)
	env.set("MF_DIR0", o.Layout.Dirs[0])
	env.set("MF_DIR1", o.Layout.Dirs[1])
	env.set("MF_VENV", o.Layout.Virtualenv)
	env = append(env, lockEnv(o)...)
	env = append(append(env, o.Env...), in...)
	run := func(text string, more vars) (*scriptOutput, error) {
		return runSession(ctx, h, o, text, append(env[:len(env):len(env)], more...), forwardAgent, talker)
	}
	c := scriptCaches.of(h)
	if c == nil || !c.useCache() {
		return run(script.text, textVars(texts))
	}
	keys := textKeys(script, texts)
	held := c.holds(keys)
	out, err := run(stubFor(script, texts), nil)
	if !missing(out, err) {
		return out, err
	}
	if !c.missed(held) {
		return run(script.text, textVars(texts))
	}
	out, err = run(missStub(script, texts), append(textVars(texts), phaseScriptVar+"="+script.text))
	c.storedKeys(keys, out.result(unstoredResult) == nil)
	return out, err
}

// runSession runs script on h in one session, with the environment env
// and, with talker, a talk of its own (see runWith), and parses its
// output.
func runSession(ctx context.Context, h sshx.Host, o *Options, script string, env vars, forwardAgent bool, talker func() (*talk, error)) (*scriptOutput, error) {
	out := &scriptOutput{host: h.Name(), console: o.Console, verbose: o.Verbose, onLock: o.onLock, leases: o.leases, progress: o.Progress}
	cmd := h.Script(ctx, script)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ForwardAgent = forwardAgent
	if talker != nil {
		k, err := talker()
		if err != nil {
			return out, err
		}
		cmd.Stdin, out.onAsk = k.r, k.ask
		defer k.stop()
	}
	err := cmd.Run()
	return out, err
}

// missing says whether a session of hitStub found the host's script cache
// lacking: it exited with exitScriptMissing, having printed nothing.
func missing(out *scriptOutput, err error) bool {
	var ee *sshx.ExitError
	return errors.As(err, &ee) && ee.Status == exitScriptMissing && out.silent()
}

// silent says whether the script printed nothing at all.
func (o *scriptOutput) silent() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.partial) == 0 && len(o.results) == 0 && len(o.errors) == 0 && len(o.tail) == 0
}

// lockEnv are the inputs of hostsh/lock.sh that every phase gets: the
// lease and who holds the locks this run takes.
func lockEnv(o *Options) vars {
	var env vars
	env.set("MF_LOCK_LEASE", seconds(o.lockLease()))
	hd := o.holder()
	env.set("MF_LOCK_USER", hd.User)
	env.set("MF_LOCK_MACHINE", hd.Machine)
	env.set("MF_LOCK_PID", strconv.Itoa(hd.PID))
	env.set("MF_LOCK_JOB", hd.Job)
	return env
}
