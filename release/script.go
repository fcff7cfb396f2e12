package release

import (
	"context"
	"strconv"

	"github.com/magefab/magefab/sshx"
)

// runWith runs script on h with its inputs in, after the inputs every
// phase reads (see hostsh/lib.sh) and the project's own environment
// (o.Env), parsing its output. With k (not nil) answering the script's
// questions (hostsh/talk.sh) on its standard input: a command with an
// input is not watched by sshx (see sshx.Cmd.Stdin), so the script
// watches its input itself, and stops when it ends before the script
// does.
func runWith(ctx context.Context, h sshx.Host, o *Options, script string, in vars, forwardAgent bool, k *talk) (*scriptOutput, error) {
	out := &scriptOutput{host: h.Name(), console: o.Console, verbose: o.Verbose, onLock: o.onLock, leases: o.leases, progress: o.Progress}
	if o.leases != nil {
		o.leases.begin(h)
		defer o.leases.end(h)
	}
	cmd := h.Script(ctx, script)
	var env vars
	env.set("MF_ROOT", o.Layout.Root())
	env.flag("MF_SUDO", o.Sudo)
	env.set("MF_RUN_ID", o.RunID)
	env.set("MF_CURRENT", o.Layout.Current)
	env.set("MF_DIR0", o.Layout.Dirs[0])
	env.set("MF_DIR1", o.Layout.Dirs[1])
	env.set("MF_VENV", o.Layout.Virtualenv)
	env = append(env, lockEnv(o)...)
	cmd.Env = append(append(env, o.Env...), in...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ForwardAgent = forwardAgent
	if k != nil {
		cmd.Stdin, out.onAsk = k.r, k.ask
		defer k.stop()
	}
	err := cmd.Run()
	return out, err
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
