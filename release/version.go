package release

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

// DefaultVersionPattern is what a release tag looks like unless
// Config.VersionPattern says otherwise: a "v" followed by two or more
// dot-separated numbers, such as v0.1 or v1.14.2. The pattern is anchored,
// so the lazy "+?" still has to consume the whole tag.
const DefaultVersionPattern = `^v\d+(\.\d+)+?$`

// FirstVersion is the tag NextPatch suggests when a repository has no
// release yet.
const FirstVersion = "v0.1.0"

// CompileVersionPattern compiles the VersionPattern setting. An empty p
// means DefaultVersionPattern. An invalid expression gives an *InputError
// whose Field is "VersionPattern".
func CompileVersionPattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		p = DefaultVersionPattern
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, &InputError{
			Field:  "VersionPattern",
			Value:  p,
			Reason: "is not a valid regular expression (" + err.Error() + "); fix it or leave it empty for " + DefaultVersionPattern,
		}
	}
	return re, nil
}

// CompareVersions orders two release tags. It returns a negative number
// when a is older than b, a positive number when a is newer, and 0 only
// when a == b.
//
// Tags are compared piece by piece, where a piece is a run of digits or a
// run of anything else: runs of digits compare as numbers of any size
// (v1.13 > v1.9, v1.14.2 > v1.14.1), other runs compare as strings, and a
// tag that extends another one is the newer (v1.2.1 > v1.2). Tags that are
// still equal (v1.02 and v1.2) are ordered as plain strings, so the order
// is total and sorting is deterministic.
func CompareVersions(a, b string) int {
	pa, pb := versionPieces(a), versionPieces(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if c := comparePiece(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(pa), len(pb)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// SortVersions sorts tags in place, newest first, by CompareVersions.
func SortVersions(tags []string) {
	slices.SortFunc(tags, func(a, b string) int { return CompareVersions(b, a) })
}

// LatestVersion returns the newest of the tags that match pattern, and
// false when none does. A nil pattern means DefaultVersionPattern.
func LatestVersion(tags []string, pattern *regexp.Regexp) (string, bool) {
	if pattern == nil {
		pattern = defaultVersionRE
	}
	latest, found := "", false
	for _, t := range tags {
		if !pattern.MatchString(t) {
			continue
		}
		if !found || CompareVersions(t, latest) > 0 {
			latest, found = t, true
		}
	}
	return latest, found
}

// NextPatch suggests the tag that follows latest: its last number is
// incremented, keeping the number's width (v0.1.1 -> v0.1.2, v1.13 ->
// v1.14, v1.09 -> v1.10, v2.0.0-rc1 -> v2.0.0-rc2). With no latest tag, or
// one without any digit, it suggests FirstVersion. The result is only a
// suggestion: validate it like any other tag.
func NextPatch(latest string) string {
	end := strings.LastIndexFunc(latest, isDigit)
	if end < 0 {
		return FirstVersion
	}
	end++
	start := end
	for start > 0 && isDigit(rune(latest[start-1])) {
		start--
	}
	return latest[:start] + increment(latest[start:end]) + latest[end:]
}

var defaultVersionRE = regexp.MustCompile(DefaultVersionPattern)

// versionPieces splits s into alternating runs of digits and non-digits.
func versionPieces(s string) []string {
	var pieces []string
	for s != "" {
		digits := isDigit(rune(s[0]))
		n := 1
		for n < len(s) && isDigit(rune(s[n])) == digits {
			n++
		}
		pieces = append(pieces, s[:n])
		s = s[n:]
	}
	return pieces
}

func comparePiece(a, b string) int {
	if !isDigit(rune(a[0])) || !isDigit(rune(b[0])) {
		return strings.Compare(a, b)
	}
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// increment adds one to a string of decimal digits, keeping its width
// unless it overflows ("09" -> "10", "99" -> "100").
func increment(digits string) string {
	b := []byte(digits)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }
