package pypkg

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/magefab/magefab/release"
)

// Package is one line of a private requirements file: an S3 archive
// (Name, and Version unless the bucket keeps one archive per package;
// optionally SHA256) or a git repository at a ref (Name, GitURL and Ref).
type Package struct {
	Name    string // the distribution name, e.g. geo-utils
	Version string // the version of an S3 archive; "" for git, and for an archive named by its package alone (buedafab's name line)
	GitURL  string // the repository of a git package; "" for S3
	Ref     string // the tag, branch or commit of a git package; HEAD for buedafab's name==git-url
	SHA256  string // the expected SHA-256 of an S3 archive, lower-case hex; "" means unchecked
	File    string // the file the package was read from, as given to Parse
	Line    int    // its line number, from 1; 0 for a Package made by hand
}

// IsGit reports whether p is a git package (name==git-url==ref).
func (p Package) IsGit() bool { return p.GitURL != "" }

// String returns p as it is written in a requirements file.
func (p Package) String() string {
	s := p.Name
	switch {
	case p.IsGit():
		s += "==" + p.GitURL + "==" + p.Ref
	case p.Version != "":
		s += "==" + p.Version
	}
	if p.SHA256 != "" {
		s += " sha256=" + p.SHA256
	}
	return s
}

// Error reports a problem with one package: a line of a requirements file
// that does not parse, or a package that could not be fetched.
type Error struct {
	File    string // the requirements file; "" when unknown
	Line    int    // the line number, from 1; 0 when unknown
	Package string // the package name; "" when the line has no valid one
	Err     error  // what went wrong
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pypkg: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Package != "" {
		b.WriteString("package " + e.Package + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errorFor wraps err in an *Error locating p.
func errorFor(p Package, err error) error {
	return &Error{File: p.File, Line: p.Line, Package: p.Name, Err: err}
}

// lineHint says what a line should look like; parse errors end with it.
const lineHint = "a line is name or name==version (an S3 archive, optionally followed by sha256=<64 hex digits>), name==git-url (its HEAD) or name==git-url==ref"

// HeadRef is the Ref of a git package listed without one (buedafab's
// name==git-url): the repository's HEAD, fetched on every run.
const HeadRef = "HEAD"

// ParseFile reads a private requirements file (see Parse).
func ParseFile(path string) ([]Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pypkg: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a private requirements file from r; name is the file's
// name for Package.File and error messages. It returns every bad line in
// one error (errors.Join of *Error) and no packages when there is one.
// A package named twice (names compared as pip does: case and runs of
// "-_." do not matter) is an error.
func Parse(r io.Reader, name string) ([]Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var (
		pkgs []Package
		errs []error
		seen = map[string]int{}
	)
	for n := 1; sc.Scan(); n++ {
		p, ok, err := parseLine(sc.Text(), name, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		key := normalizeName(p.Name)
		if prev, dup := seen[key]; dup {
			errs = append(errs, &Error{File: name, Line: n, Package: p.Name,
				Err: fmt.Errorf("is already listed on line %d; list each package once", prev)})
			continue
		}
		seen[key] = n
		pkgs = append(pkgs, p)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &Error{File: name, Err: fmt.Errorf("reading: %w", err)})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pkgs, nil
}

var nameSeparators = regexp.MustCompile(`[-_.]+`)

// normalizeName is the PEP 503 form of a distribution name.
func normalizeName(name string) string {
	return nameSeparators.ReplaceAllString(strings.ToLower(name), "-")
}

// parseLine parses line n; ok is false for a blank or comment line.
func parseLine(raw, file string, n int) (p Package, ok bool, err error) {
	fail := func(pkg, format string, args ...any) (Package, bool, error) {
		return Package{}, false, &Error{File: file, Line: n, Package: pkg,
			Err: fmt.Errorf(format+"; "+lineHint, args...)}
	}
	raw = strings.TrimSuffix(raw, "\r")
	if !utf8.ValidString(raw) {
		return fail("", "is not valid UTF-8")
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) >= 0 {
		return fail("", "contains a control character")
	}
	line := strings.TrimSpace(stripComment(raw))
	if line == "" {
		return Package{}, false, nil
	}
	fields := strings.Fields(line)
	if last := fields[len(fields)-1]; len(fields) > 1 && strings.HasPrefix(last, "sha256=") {
		p.SHA256 = strings.TrimPrefix(last, "sha256=")
		fields = fields[:len(fields)-1]
	}
	parts := strings.Split(strings.Join(fields, " "), "==")
	if reason := checkName(parts[0]); reason != "" {
		return fail("", "name %q %s", parts[0], reason)
	}
	p.Name, p.File, p.Line = parts[0], file, n
	switch {
	case len(parts) == 2 && looksLikeGitURL(parts[1]):
		// buedafab's name==git-url: the repository at its HEAD.
		p.GitURL, p.Ref = parts[1], HeadRef
		if reason := checkGitURL(p.GitURL); reason != "" {
			return fail(p.Name, "git URL %q %s", p.GitURL, reason)
		}
		if p.SHA256 != "" {
			return fail(p.Name, "sha256= applies only to S3 archives (name or name==version), not to git packages")
		}
	case len(parts) <= 2:
		// name==version, or buedafab's bare name: the archive the
		// bucket keeps for the package.
		if len(parts) == 2 {
			p.Version = parts[1]
			if reason := checkVersion(p.Version); reason != "" {
				return fail(p.Name, "version %q %s", p.Version, reason)
			}
		}
		if p.SHA256 != "" {
			sum, reason := checkSHA256(p.SHA256)
			if reason != "" {
				return fail(p.Name, "sha256 %q %s", p.SHA256, reason)
			}
			p.SHA256 = sum
		}
	case len(parts) == 3:
		p.GitURL, p.Ref = parts[1], parts[2]
		if reason := checkGitURL(p.GitURL); reason != "" {
			return fail(p.Name, "git URL %q %s", p.GitURL, reason)
		}
		if reason := checkRef(p.Ref); reason != "" {
			return fail(p.Name, "git ref %q %s", p.Ref, reason)
		}
		if p.SHA256 != "" {
			return fail(p.Name, "sha256= applies only to S3 archives (name or name==version), not to git packages")
		}
	default:
		return fail(p.Name, "has %d \"==\" separators, at most 2 are allowed", len(parts)-1)
	}
	return p, true, nil
}

// stripComment cuts a comment: '#' at the start of the line or after
// whitespace ('#' elsewhere may be part of a URL).
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}

// validate checks a Package that may have been made by hand.
func (p Package) validate() error {
	check := func(what, v, reason string) error {
		if reason == "" {
			return nil
		}
		return fmt.Errorf("%s %q %s", what, v, reason)
	}
	if reason := checkName(p.Name); reason != "" {
		return &Error{File: p.File, Line: p.Line, Err: check("name", p.Name, reason)}
	}
	var err error
	if p.IsGit() {
		err = errors.Join(check("git URL", p.GitURL, checkGitURL(p.GitURL)), check("git ref", p.Ref, checkRef(p.Ref)))
		if p.Version != "" || p.SHA256 != "" {
			err = errors.Join(err, errors.New("a git package has no version or sha256"))
		}
	} else {
		if p.Version != "" {
			err = check("version", p.Version, checkVersion(p.Version))
		}
		if p.SHA256 != "" {
			if _, reason := checkSHA256(p.SHA256); reason != "" {
				err = errors.Join(err, check("sha256", p.SHA256, reason))
			}
		}
		if p.Ref != "" {
			err = errors.Join(err, errors.New("a ref needs a git URL"))
		}
	}
	if err != nil {
		return errorFor(p, err)
	}
	return nil
}

const maxField = 200 // bytes in a name, version or ref

func isAlnum(r rune) bool {
	return ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
}

// checkName returns what is wrong with a package name, or "".
func checkName(s string) string {
	return checkWord(s, "._-", "a name is letters, digits, '.', '_' and '-'")
}

// checkVersion returns what is wrong with a version, or "".
func checkVersion(s string) string {
	return checkWord(s, "._+!-", "a version is letters, digits, '.', '_', '+', '!' and '-'")
}

func checkWord(s, punct, hint string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxField:
		return fmt.Sprintf("is longer than %d bytes", maxField)
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	}
	for i, r := range s {
		if !isAlnum(r) && !strings.ContainsRune(punct, r) {
			if unicode.IsSpace(r) {
				return "contains whitespace; " + hint
			}
			return fmt.Sprintf("contains %q; %s", r, hint)
		}
		if i == 0 && !isAlnum(r) {
			return "must start with a letter or digit"
		}
	}
	return ""
}

// checkSHA256 returns the lower-case form of a SHA-256 in hex, or what is
// wrong with it.
func checkSHA256(s string) (string, string) {
	if len(s) != 64 {
		return "", fmt.Sprintf("has %d characters, want 64 hex digits", len(s))
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return "", fmt.Sprintf("contains %q, want 64 hex digits", r)
		}
	}
	return strings.ToLower(s), ""
}

// looksLikeGitURL reports whether the second field of a name==x line is
// a repository (buedafab's name==git-url) rather than a version: a
// version never holds '/', ':' or '@', and a repository's URL or path
// always holds one of them, or ends in ".git".
func looksLikeGitURL(s string) bool {
	return strings.ContainsAny(s, "/:@") || strings.HasSuffix(s, ".git")
}

// checkGitURL returns what is wrong with a git URL, or "".
func checkGitURL(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 2000:
		return "is longer than 2000 bytes"
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return "contains whitespace"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "contains a control character"
	case strings.HasPrefix(s, "ext::"), strings.HasPrefix(s, "fd::"):
		return "uses a transport that runs commands; give an ssh, https or file URL or a path"
	}
	return ""
}

// checkRef returns what is wrong with a git ref (tag, branch or commit),
// or "": release.ValidateRefName's rules.
func checkRef(s string) string {
	var ie *release.InputError
	if errors.As(release.ValidateRefName("git ref", s), &ie) {
		return ie.Reason
	}
	return ""
}
