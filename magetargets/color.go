package magetargets

import (
	"io"
	"os"

	"github.com/magefab/magefab/internal/live"
	"github.com/magefab/magefab/internal/tty"
	"github.com/magefile/mage/mg"
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

// OutputVar chooses how a deploy or a rollback shows its hosts' progress:
// "summary" (OutputSummary) draws one summary redrawn in place, per phase
// how many hosts are done, working and failed, with the slowest named;
// "lines" (OutputLines) prints every host's lines, prefixed with its name.
// Unset, a terminal gets the summary (not in CI, nor with TERM=dumb, nor
// with mage -v) and anything else the lines.
const OutputVar = "MAGEFAB_OUTPUT"

// The values of OutputVar.
const (
	OutputLines   = "lines"
	OutputSummary = "summary"
)

// Output returns MAGEFAB_OUTPUT: OutputLines, OutputSummary, or "" when
// it is unset.
func Output() (string, error) {
	switch v := os.Getenv(OutputVar); v {
	case "", OutputLines, OutputSummary:
		return v, nil
	default:
		return "", varError(OutputVar, v, "is not an output; give lines (every host's lines) or summary (one summary redrawn in place), or unset it to choose by the terminal")
	}
}

// liveSummary says whether a run shows its progress on w as a live
// summary (see OutputVar).
func liveSummary(w io.Writer) (bool, error) {
	mode, err := Output()
	switch {
	case err != nil:
		return false, err
	case mode != "":
		return mode == OutputSummary, nil
	}
	return !mg.Verbose() && tty.Live(w), nil
}

// newSummary returns the live summary of a run on w, in colour where w
// takes it, as wide and as tall as w when it is a terminal.
func newSummary(w io.Writer) *live.Summary {
	return live.New(w, live.Config{
		Color:  tty.Color(w),
		Width:  func() int { width, _ := tty.Size(w); return width },
		Height: func() int { _, height := tty.Size(w); return height },
	})
}
