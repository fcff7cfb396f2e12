// Package shtext trims the text of a shell script before it is sent to a
// host.
package shtext

import "strings"

// Strip returns script without its comment-only lines and blank lines,
// which the shell skips: the commands, and every line inside a quoted
// string, stay as they are (so do comments after a command on its line,
// and a "#!" first line). A line that a backslash continues onto the next
// keeps that next line.
//
// Strip reads the script's quoting as POSIX sh does, and gives the script
// back whole when it cannot be sure what a line is: when it holds a
// here-document (or anything else with "<<"), or when the script ends
// inside a quoted string, an expansion or a continued line.
func Strip(script string) string {
	var (
		b  strings.Builder
		lx lexer
	)
	lines := strings.SplitAfter(script, "\n")
	for i, line := range lines {
		if lx.clean() && !(i == 0 && strings.HasPrefix(line, "#!")) {
			t := strings.TrimLeft(line, " \t")
			if t == "" || t == "\n" || t[0] == '#' {
				continue
			}
		}
		if !lx.scan(line) {
			return script
		}
		b.WriteString(line)
	}
	if !lx.clean() {
		return script
	}
	return b.String()
}

// The contexts a lexer can be in, innermost last on its stack; none is the
// script's top level.
const (
	single   = '\'' // '...'
	double   = '"'  // "..."
	subst    = '('  // $(...) or $((...)), counting parentheses
	backtick = '`'  // `...`
	brace    = '{'  // ${...}
)

type frame struct {
	kind  byte
	depth int // open parentheses, for subst
}

// lexer follows a script's quoting line by line: enough to tell whether a
// line begins at the top level, where a line that starts with "#" is a
// comment.
type lexer struct {
	stack     []frame
	continued bool // the last line ended with a backslash (outside '...')
	prev      byte // the character before, outside quotes: whether a word begins
}

// clean reports whether the next line begins at the top level.
func (lx *lexer) clean() bool { return len(lx.stack) == 0 && !lx.continued }

// scan reads one line (with its newline, if any). It returns false for a
// line it cannot follow (a here-document).
func (lx *lexer) scan(line string) bool {
	if !lx.continued {
		lx.prev = '\n'
	}
	lx.continued = false
	for i := 0; i < len(line); i++ {
		c := line[i]
		var next byte
		if i+1 < len(line) {
			next = line[i+1]
		}
		kind := byte(0)
		if n := len(lx.stack); n > 0 {
			kind = lx.stack[n-1].kind
		}
		switch kind {
		case single:
			if c == '\'' {
				lx.pop()
			}
			continue
		case double:
			switch c {
			case '\\':
				if next == '\n' {
					lx.continued = true
				}
				i++ // the escaped character
			case '"':
				lx.pop()
				lx.prev = 'x'
			case '`':
				lx.push(backtick)
				lx.prev = '\n'
			case '$':
				i += lx.dollar(next)
			}
			continue
		}
		// The top level, a substitution or an expansion: words, quotes
		// and comments.
		switch c {
		case '\\':
			if next == '\n' {
				lx.continued = true
				return true // prev stays: the next line goes on with the word
			}
			i++
			lx.prev = 'x'
		case '\'':
			lx.push(single)
			lx.prev = c
		case '"':
			lx.push(double)
			lx.prev = c
		case '`':
			if kind == backtick {
				lx.pop()
				lx.prev = 'x'
			} else {
				lx.push(backtick)
				lx.prev = '\n'
			}
		case '$':
			i += lx.dollar(next)
		case '#':
			if kind != brace && wordBreak(lx.prev) {
				return true // a comment, to the end of the line
			}
			lx.prev = c
		case '<':
			if next == '<' {
				return false
			}
			lx.prev = c
		case ')':
			lx.prev = c
			if kind == subst {
				f := &lx.stack[len(lx.stack)-1]
				if f.depth--; f.depth == 0 {
					lx.pop()
					lx.prev = 'x'
				}
			}
		case '(':
			lx.prev = c
			if kind == subst {
				lx.stack[len(lx.stack)-1].depth++
			}
		case '}':
			lx.prev = c
			if kind == brace {
				lx.pop()
				lx.prev = 'x'
			}
		default:
			lx.prev = c
		}
	}
	return true
}

// dollar opens what "$" followed by next opens, if anything, and returns
// how many characters after the "$" that took.
func (lx *lexer) dollar(next byte) int {
	switch next {
	case '(':
		lx.stack = append(lx.stack, frame{kind: subst, depth: 1})
		lx.prev = '(' // a command begins
		return 1
	case '{':
		lx.push(brace)
		lx.prev = '{'
		return 1
	}
	lx.prev = '$'
	return 0
}

func (lx *lexer) push(kind byte) { lx.stack = append(lx.stack, frame{kind: kind}) }
func (lx *lexer) pop()           { lx.stack = lx.stack[:len(lx.stack)-1] }

// wordBreak reports whether a word begins after c, where "#" starts a
// comment.
func wordBreak(c byte) bool {
	switch c {
	case '\n', ' ', '\t', ';', '&', '|', '(', ')', '<', '>':
		return true
	}
	return false
}
