package magetargets

import (
	"io"
	"os"

	"github.com/magefab/magefab/internal/tty"
)

// Colour in what the targets print: only on a terminal, never with
// NO_COLOR set (see package tty). Tests write to buffers, which get none.

// green is s for w, green on a terminal: what went well ("now deployed").
func green(w io.Writer, s string) string { return tty.Paint(tty.Color(w), tty.Green, s) }

// warningLabel is "warning", yellow when the targets' output is a
// terminal.
func warningLabel() string { return tty.Paint(tty.Color(stdout), tty.Yellow, "warning") }

// redError returns err with its text red when mage prints it to a
// terminal (mage writes a target's error to stderr); errors.As and
// errors.Is see what they saw before, and a nil err stays nil.
func redError(err error) error {
	if err == nil || !tty.Color(os.Stderr) {
		return err
	}
	return &advisedError{msg: tty.Paint(true, tty.Red, err.Error()), err: err}
}
