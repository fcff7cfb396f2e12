// Package tty decides whether output gets colour, and colours it: only a
// terminal does, and never when NO_COLOR is set (https://no-color.org) or
// TERM is "dumb". Pipes, files and CI logs get plain text.
package tty

import (
	"io"
	"os"

	"golang.org/x/term"
)

// SGR codes of the styles the project prints.
const (
	Bold   = "1"
	Red    = "31"
	Green  = "32"
	Yellow = "33"
)

// Color reports whether text written to w may carry colour: w is a
// terminal, NO_COLOR is unset or empty, and TERM is not "dumb".
func Color(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, ok := fd(w)
	return ok
}

// Paint returns s in the style code (one of the SGR constants) when on
// is true, and s unchanged otherwise. Each line is styled on its own, so
// that a pager or a prefix added per line does not carry the style over.
func Paint(on bool, code, s string) string {
	if !on || s == "" {
		return s
	}
	out := make([]byte, 0, len(s)+16)
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '\n' {
			if i > start {
				out = append(out, "\x1b["+code+"m"...)
				out = append(out, s[start:i]...)
				out = append(out, "\x1b[0m"...)
			}
			if i < len(s) {
				out = append(out, '\n')
			}
			start = i + 1
		}
	}
	return string(out)
}

// Live reports whether w is a terminal on which output may be redrawn in
// place (a live summary): w is a terminal, TERM is not "dumb", and the
// process does not run in CI (CI is unset or empty, as every CI service
// sets it), whose logs keep every line.
func Live(w io.Writer) bool {
	if os.Getenv("TERM") == "dumb" || os.Getenv("CI") != "" {
		return false
	}
	_, ok := fd(w)
	return ok
}

// Size returns the width and height of the terminal w, or 0, 0 when w is
// not a terminal or its size is unknown.
func Size(w io.Writer) (width, height int) {
	f, ok := fd(w)
	if !ok {
		return 0, 0
	}
	width, height, err := term.GetSize(f)
	if err != nil {
		return 0, 0
	}
	return width, height
}

// fd returns the file descriptor of w when w is a terminal.
func fd(w io.Writer) (int, bool) {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}
