package live

import (
	"strconv"
	"strings"
)

// Screen replays what a Summary wrote, as a terminal would show it, and
// returns the lines on the screen, without colour: a check of the
// summary's output that does not depend on how it was drawn. It knows the
// sequences a Summary writes (carriage return, newline, cursor up, erase
// below, erase line, colours) and ignores any other escape sequence.
func Screen(out string) []string {
	var screen [][]rune
	row, col := 0, 0
	put := func(r rune) {
		for len(screen) <= row {
			screen = append(screen, nil)
		}
		line := screen[row]
		for len(line) <= col {
			line = append(line, ' ')
		}
		line[col] = r
		screen[row] = line
		col++
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		case '\x1b':
			if i+1 >= len(rs) || rs[i+1] != '[' {
				continue
			}
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';' || rs[j] == '?') {
				j++
			}
			if j == len(rs) {
				i = j
				continue
			}
			arg := string(rs[i+2 : j])
			n, err := strconv.Atoi(arg)
			if err != nil {
				n = 0
			}
			switch rs[j] {
			case 'A':
				row = max(row-max(n, 1), 0)
			case 'J':
				if n == 0 && row < len(screen) {
					screen = screen[:row+1]
					if col < len(screen[row]) {
						screen[row] = screen[row][:col]
					}
				}
			case 'K':
				if row < len(screen) {
					switch n {
					case 0:
						if col < len(screen[row]) {
							screen[row] = screen[row][:col]
						}
					case 2:
						screen[row] = nil
					}
				}
			}
			i = j
		default:
			put(r)
		}
	}
	lines := make([]string, len(screen))
	for i, l := range screen {
		lines[i] = strings.TrimRight(string(l), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
