package sshx

import "strings"

// Quote returns s quoted for a POSIX shell, so that the shell passes it on as
// one argument, byte for byte. It is the one function through which every
// value reaches a remote or local shell in magefab.
//
// Strings made only of characters that no shell treats specially are
// returned as they are, for readable command lines. Everything else is put
// in single quotes, where a single quote of s ends the quoted part, follows
// escaped with a backslash, and a new quoted part begins. The empty string
// becomes a pair of single quotes:
//
//	Quote("web1")       // web1
//	Quote("it's $HOME") // 'it'\''s $HOME'
//	Quote("")           // ''
//
// A NUL byte cannot be passed in a shell argument at all; commands that
// contain one are refused when they start.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isShellSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Embed returns s for use inside a double-quoted shell string: it closes
// the double quotes, adds s as Quote quotes it, and opens them again. In
//
//	script := `echo "cannot find ` + Embed(s) + `"`
//
// the argument of echo is one word that holds s literally, whatever s holds
// ($, backquotes, quotes, newlines).
func Embed(s string) string {
	return `"` + Quote(s) + `"`
}

// Join quotes each argument with Quote and joins them with spaces, giving a
// command line that runs args[0] with the rest as its arguments.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func isShellSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_-./:,+@%", c) >= 0:
		default:
			return false
		}
	}
	// '=' is quoted: as the first word of a command, NAME=value would be
	// an assignment rather than the command. '~' is quoted: it expands.
	return true
}
