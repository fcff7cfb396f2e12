package wheel

import (
	"regexp"
	"strings"
)

// Requirement is one PEP 508 requirement, reduced to what choosing wheels
// needs.
type Requirement struct {
	Name   string // the project, e.g. Django
	Marker string // the environment marker after ';', "" if none
}

// Extra reports whether the requirement belongs to an extra (its marker
// names one), which is installed only when asked for.
func (r Requirement) Extra() bool {
	return extraMarker.MatchString(r.Marker)
}

var (
	extraMarker = regexp.MustCompile(`\bextra\s*==`)
	projectName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*`)
)

// ParseRequirement reads a requirement such as `Django>=3.2,<5`,
// `asgiref (>=3.2)` or `tzdata; sys_platform == "win32"`. ok is false when
// s names no project.
func ParseRequirement(s string) (r Requirement, ok bool) {
	spec, marker, _ := strings.Cut(s, ";")
	r.Name = projectName.FindString(strings.TrimSpace(spec))
	r.Marker = strings.TrimSpace(marker)
	return r, r.Name != ""
}

// RequirementNames returns the projects a pip requirements file lists, in
// order: comments, blank lines and options (-r, -e, --index-url, ...) are
// skipped.
func RequirementNames(text string) []string {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-") {
			continue
		}
		if r, ok := ParseRequirement(line); ok {
			names = append(names, r.Name)
		}
	}
	return names
}

// eggRequires turns an egg-info requires.txt into Requires-Dist values:
// the lines before any section are unconditional; [extra], [:marker] and
// [extra:marker] sections carry that condition.
func eggRequires(text string) []string {
	var out []string
	cond := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			extra, marker, _ := strings.Cut(line[1:len(line)-1], ":")
			switch {
			case extra != "" && marker != "":
				cond = "(" + marker + `) and extra == "` + extra + `"`
			case extra != "":
				cond = `extra == "` + extra + `"`
			default:
				cond = marker
			}
		case cond != "":
			out = append(out, line+"; "+cond)
		default:
			out = append(out, line)
		}
	}
	return out
}
