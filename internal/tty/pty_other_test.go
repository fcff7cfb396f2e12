//go:build !linux

package tty

import (
	"os"
	"testing"
)

// openTerminal skips the test: pseudo-terminals are opened on Linux only.
func openTerminal(t *testing.T) *os.File {
	t.Helper()
	t.Skip("pseudo-terminals are opened on Linux only")
	return nil
}
