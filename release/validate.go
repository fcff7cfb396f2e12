package release

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on user-supplied names.
const (
	maxRefLen     = 200  // bytes in a tag or revision name
	maxUnitLen    = 64   // bytes in Config.Unit
	maxNameLen    = 128  // bytes in a name of the layout (ValidateName)
	maxPathLen    = 1024 // bytes in a deploy root (ValidateDeployPath)
	maxRelPathLen = 1024 // bytes in a file name relative to the repository
)

// InputError reports a user-supplied value that was rejected before it
// reached git, a host or a shell.
type InputError struct {
	Field  string // what the value is: "tag", "commit", "Unit", "VersionPattern", ...
	Value  string // the value as given
	Reason string // what is wrong with it and what to do instead
}

// maxShownValue bounds how much of a bad value an error message shows.
const maxShownValue = 80

func (e *InputError) Error() string {
	v := e.Value
	shown := fmt.Sprintf("%q", v)
	if len(v) > maxShownValue {
		cut := maxShownValue
		for cut > maxShownValue-utf8.UTFMax && !utf8.RuneStart(v[cut]) {
			cut--
		}
		shown = fmt.Sprintf("%q... (%d bytes)", v[:cut], len(v))
	}
	return fmt.Sprintf("release: invalid %s %s: %s", e.Field, shown, e.Reason)
}

// ValidateTag checks a release tag: it must be a name git accepts for a
// tag (git check-ref-format), must not start with '-', must be made of
// ASCII letters, digits, '.', '_', '-', '+' and '/' only (a release name
// is shown in the hosts' progress lines and needs no quoting anywhere),
// must be at most maxRefLen bytes, and must match pattern (nil means
// DefaultVersionPattern).
func ValidateTag(tag string, pattern *regexp.Regexp) error {
	if pattern == nil {
		pattern = defaultVersionRE
	}
	bad := func(reason string) error {
		return &InputError{Field: "tag", Value: tag, Reason: reason}
	}
	if reason := checkRefName(tag); reason != "" {
		return bad(reason + "; " + tagHint(pattern))
	}
	if i := strings.IndexFunc(tag, func(r rune) bool { return !isTagRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(tag[i:])
		return bad(fmt.Sprintf("contains %q; a release tag holds only letters, digits, '.', '_', '-', '+' and '/'; %s", r, tagHint(pattern)))
	}
	if tag == "HEAD" {
		return bad("HEAD is not a tag; " + tagHint(pattern))
	}
	if !pattern.MatchString(tag) {
		return bad("does not match VersionPattern " + pattern.String() + "; " + tagHint(pattern))
	}
	return nil
}

func tagHint(pattern *regexp.Regexp) string {
	if pattern.String() == DefaultVersionPattern {
		return "use a release tag such as v1.2.3"
	}
	return "use a release tag that matches VersionPattern " + pattern.String()
}

// ValidateCommit checks a commit given by its SHA: 4 to 64 hexadecimal
// digits, in either case (SHA-1 ids have 40, SHA-256 ids 64).
func ValidateCommit(rev string) error {
	const hint = "give a commit as 4 to 64 hexadecimal digits, e.g. 6b4943c (see git log --oneline)"
	bad := func(reason string) error {
		return &InputError{Field: "commit", Value: rev, Reason: reason}
	}
	if rev == "" {
		return bad("is empty; " + hint)
	}
	if i := strings.IndexFunc(rev, func(r rune) bool { return !isHex(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(rev[i:])
		reason := fmt.Sprintf("contains %q, which is not a hexadecimal digit; %s", r, hint)
		if ValidateRevision(rev) == nil {
			reason += "; it looks like a tag or branch name, not a commit"
		}
		return bad(reason)
	}
	if len(rev) < 4 || len(rev) > 64 {
		return bad(fmt.Sprintf("has %d digits; %s", len(rev), hint))
	}
	return nil
}

// ValidateRevision checks a revision to deploy: a tag, a commit SHA or a
// branch such as origin/master. Only [A-Za-z0-9._/-] are allowed; the name
// must not start with '-', '.' or '/', contain "..", "//" or "/.", end in
// '/', '.' or ".lock", or be longer than maxRefLen bytes.
func ValidateRevision(rev string) error {
	const hint = "give a tag (v1.2.3), a commit SHA (6b4943c) or a branch (origin/master)"
	bad := func(reason string) error {
		return &InputError{Field: "revision", Value: rev, Reason: reason + "; " + hint}
	}
	switch {
	case rev == "":
		return bad("is empty")
	case len(rev) > maxRefLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxRefLen))
	}
	if i := strings.IndexFunc(rev, func(r rune) bool { return !isRevisionRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(rev[i:])
		if !utf8.ValidString(rev) {
			return bad("is not valid UTF-8")
		}
		return bad(fmt.Sprintf("contains %q; only letters, digits, '.', '_', '-' and '/' are allowed", r))
	}
	switch {
	case strings.HasPrefix(rev, "-"):
		return bad("starts with '-'")
	case strings.HasPrefix(rev, "/"), strings.HasPrefix(rev, "."):
		return bad(fmt.Sprintf("starts with %q", rev[:1]))
	case strings.Contains(rev, ".."), strings.Contains(rev, "//"), strings.Contains(rev, "/."):
		return bad(`contains "..", "//" or "/."`)
	case strings.HasSuffix(rev, "/"), strings.HasSuffix(rev, "."):
		return bad(fmt.Sprintf("ends with %q", rev[len(rev)-1:]))
	case strings.HasSuffix(rev, ".lock"):
		return bad(`ends with ".lock"`)
	}
	return nil
}

// ValidateUnit checks Config.Unit, which becomes part of paths and of the
// init script's name: ASCII letters, digits, '_', '-' and '.', not starting
// with '-' or '.', at most maxUnitLen bytes.
func ValidateUnit(name string) error {
	const hint = "use a short name of letters, digits, '_', '-' and '.', such as five or my-app"
	bad := func(reason string) error {
		return &InputError{Field: "Unit", Value: name, Reason: reason + "; " + hint}
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > maxUnitLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxUnitLen))
	case name[0] == '-' || name[0] == '.':
		return bad(fmt.Sprintf("starts with %q", name[:1]))
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !isNameRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return bad(fmt.Sprintf("contains %q", r))
	}
	return nil
}

// ValidateRelPath checks p, the value of the setting named field, as a
// file name relative to the repository root: not empty, at most
// maxRelPathLen bytes, not absolute, no ".." element, no leading '-', no
// control characters, valid UTF-8, and none of the characters that keep
// a special meaning inside a shell's double quotes ('$', '`', '"', '\').
// Other characters, spaces and quotes included, are passed literally.
func ValidateRelPath(field, p string) error {
	bad := func(reason string) error {
		return &InputError{Field: field, Value: p, Reason: reason}
	}
	const hint = "give a path relative to the repository root, such as requirements/common.txt"
	switch {
	case p == "":
		return bad("is empty; " + hint)
	case len(p) > maxRelPathLen:
		return bad(fmt.Sprintf("is longer than %d bytes; %s", maxRelPathLen, hint))
	case !utf8.ValidString(p):
		return bad("is not valid UTF-8; rename the file")
	case strings.IndexFunc(p, IsControl) >= 0:
		return bad("contains a control character (NUL, newline, ...); rename the file")
	case strings.HasPrefix(p, "/"):
		return bad("is an absolute path; " + hint)
	case strings.HasPrefix(p, "-"):
		return bad("starts with '-'; write it with ./ in front, as in ./-name")
	}
	if i := strings.IndexAny(p, ShellSpecialInQuotes); i >= 0 {
		return bad(fmt.Sprintf("contains %q; rename the file: '$', '`', '\"' and '\\' are not allowed in file names magefab passes to the hosts", p[i]))
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return bad(`has a ".." element, which leaves the repository; ` + hint)
		}
	}
	return nil
}

// ValidateRefName checks name, the value of the setting named field, as a
// git ref name: a tag, a branch or a commit id that git would accept
// under refs/ (git check-ref-format), not starting with '-', without
// whitespace or invalid UTF-8, and at most maxRefLen bytes. The
// *InputError it returns says what is wrong; the caller adds what to give.
func ValidateRefName(field, name string) error {
	if reason := checkRefName(name); reason != "" {
		return &InputError{Field: field, Value: name, Reason: reason}
	}
	return nil
}

// ValidateName checks name, the value of the setting named field, as a
// single directory or link name of the layout: not empty, at most
// maxNameLen bytes, not starting with '.' or '-' (so not "." or ".."), and
// only ASCII letters, digits, '.', '_' and '-'. The names appear bare in
// the hosts' scripts and messages, where ':' separates them.
func ValidateName(field, name string) error {
	bad := func(reason string) error {
		return &InputError{Field: field, Value: name, Reason: reason + "; give a single plain name of letters, digits, '.', '_' and '-', such as releases, a, current or env"}
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > maxNameLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxNameLen))
	case strings.Contains(name, "/"):
		return bad("contains '/'")
	case strings.HasPrefix(name, "."):
		return bad("starts with '.'")
	case strings.HasPrefix(name, "-"):
		return bad("starts with '-'")
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return IsControl(r) || unicode.IsSpace(r) }):
		return bad("contains whitespace or a control character")
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !isNameRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return bad(fmt.Sprintf("contains %q", r))
	}
	return nil
}

// ValidateDeployPath checks p as the deploy root on the hosts (the
// setting Path): an absolute path, or one relative to the login user's
// home; at most maxPathLen bytes; not "/"; no ".." element; no leading
// '-'; and only ASCII letters, digits, '/', '.', '_', '-', '+', '@', ','
// and ':', so that it needs no quoting anywhere (templates such as a
// restart command hold it bare).
func ValidateDeployPath(p string) error {
	const hint = "give a plain directory such as /var/webapps/five"
	bad := func(reason string) error { return &InputError{Field: "Path", Value: p, Reason: reason} }
	switch {
	case p == "":
		return bad("is empty; give the deploy root on the servers, such as /var/webapps/five")
	case strings.IndexFunc(p, IsControl) >= 0 || !utf8.ValidString(p):
		return bad("contains a control character or invalid UTF-8; " + hint)
	case len(p) > maxPathLen:
		return bad(fmt.Sprintf("is longer than %d bytes; %s", maxPathLen, hint))
	case strings.HasPrefix(p, "-"):
		return bad("starts with '-'; write it with ./ in front for a path relative to the login user's home")
	case path.Clean(p) == "/":
		return bad("is the root directory; give the app's own directory such as /var/webapps/five")
	case slices.Contains(strings.Split(p, "/"), ".."):
		return bad(`has a ".." element; give an absolute path such as /var/webapps/five, or one relative to the login user's home without ".."`)
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return !isPathRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(p[i:])
		return bad(fmt.Sprintf("contains %q; give a directory made of letters, digits and '/', '.', '_', '-', '+', '@', ',', ':', such as /var/webapps/five", r))
	}
	return nil
}

// checkRefName applies the rules of git check-ref-format to a name under
// refs/, plus this package's stricter ones (no leading '-', no whitespace
// or invalid UTF-8, a length limit). It returns what is wrong, or "" when
// the name is acceptable.
func checkRefName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxRefLen:
		return fmt.Sprintf("is longer than %d bytes", maxRefLen)
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case strings.HasPrefix(name, "-"):
		return "starts with '-'"
	case name == "@":
		return `is "@"`
	case strings.Contains(name, ".."):
		return `contains ".."`
	case strings.Contains(name, "@{"):
		return `contains "@{"`
	case strings.HasPrefix(name, "/"), strings.HasSuffix(name, "/"), strings.Contains(name, "//"):
		return "has an empty path component (leading, trailing or double '/')"
	case strings.HasSuffix(name, "."):
		return "ends with '.'"
	}
	for _, r := range name {
		switch {
		case IsControl(r):
			return "contains a control character"
		case unicode.IsSpace(r):
			return "contains whitespace"
		case strings.ContainsRune(`~^:?*[\`, r):
			return fmt.Sprintf("contains %q, which git does not allow in a ref name", r)
		}
	}
	for _, comp := range strings.Split(name, "/") {
		if strings.HasPrefix(comp, ".") {
			return "has a component starting with '.'"
		}
		if strings.HasSuffix(comp, ".lock") {
			return `has a component ending with ".lock"`
		}
	}
	return ""
}

func isHex(r rune) bool {
	return isDigit(r) || ('a' <= r && r <= 'f') || ('A' <= r && r <= 'F')
}

func isASCIIAlnum(r rune) bool {
	return isDigit(r) || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}

func isRevisionRune(r rune) bool {
	return isASCIIAlnum(r) || r == '.' || r == '_' || r == '/' || r == '-'
}

func isTagRune(r rune) bool {
	return isRevisionRune(r) || r == '+'
}

// ShellSpecialInQuotes are the characters a POSIX shell still interprets
// inside double quotes: a value passed to the hosts as a file or directory
// name must hold none of them.
const ShellSpecialInQuotes = "$`\"\\"

// isNameRune reports the characters of a Unit and of a name of the
// layout: ASCII letters, digits, '.', '_' and '-'.
func isNameRune(r rune) bool {
	return isASCIIAlnum(r) || r == '.' || r == '_' || r == '-'
}

// isPathRune reports the characters of a deploy root: those of a name,
// '/', and the few others that no shell treats specially.
func isPathRune(r rune) bool {
	return isNameRune(r) || strings.ContainsRune("/+@,:", r)
}

// IsControl reports whether r is an ASCII or Unicode control character
// (C0, DEL or C1). No value that reaches a host, a message or a log line
// may hold one.
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0)
}
