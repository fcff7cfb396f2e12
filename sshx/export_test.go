package sshx

import "context"

// Wrap is the process-group wrapper put around every remote command, for
// the benchmark that measures what it costs.
func Wrap(line string) string { return wrap(line, true) }

// Connect opens the connection now, so that tests can tell dialling apart
// from running a command.
func (r *Remote) Connect(ctx context.Context) error {
	_, err := r.connection(ctx)
	return err
}
