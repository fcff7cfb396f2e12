package release

import (
	"fmt"
	"path"
	"strings"
)

// Layout is the a/b layout of one app on a host:
//
//	<Path>/
//	    <ReleasesRoot>/
//	        <Dirs[0]>/           a clone of the repository, with its virtualenv in <Virtualenv>/
//	        <Dirs[1]>/           the other clone
//	        <Current> -> <Dirs[i]>
//	        revisions.log        one line per switch
//	        .lock/               the deploy lock, while a deploy runs
type Layout struct {
	Path         string    // deploy root; relative paths are relative to the login user's home
	ReleasesRoot string    // subdirectory holding the release dirs, e.g. "releases"
	Dirs         [2]string // the two alternating release dirs, e.g. "a" and "b"
	Current      string    // the symlink to the live release dir, e.g. "current"
	Virtualenv   string    // the virtualenv inside each release dir, e.g. "env"
}

// Root is where the release dirs live: Path/ReleasesRoot.
func (l Layout) Root() string { return path.Join(l.Path, l.ReleasesRoot) }

// Other returns the release dir that is not dir.
func (l Layout) Other(dir string) string {
	if dir == l.Dirs[0] {
		return l.Dirs[1]
	}
	return l.Dirs[0]
}

// Validate checks that every name is a plain name and Path a clean path.
func (l Layout) Validate() error {
	if err := ValidateDeployPath(l.Path); err != nil {
		return err
	}
	for _, n := range []struct{ field, v string }{
		{"ReleasesRoot", l.ReleasesRoot}, {"ReleaseDirs[0]", l.Dirs[0]}, {"ReleaseDirs[1]", l.Dirs[1]},
		{"CurrentLink", l.Current}, {"Virtualenv", l.Virtualenv},
	} {
		if err := ValidateName(n.field, n.v); err != nil {
			return err
		}
	}
	if l.Dirs[0] == l.Dirs[1] {
		return &InputError{Field: "ReleaseDirs", Value: l.Dirs[0], Reason: "the two release dirs must differ, e.g. a and b"}
	}
	if l.Current == l.Dirs[0] || l.Current == l.Dirs[1] {
		return &InputError{Field: "CurrentLink", Value: l.Current, Reason: "must differ from the release dirs"}
	}
	return nil
}

// ValidateName checks a single path component used in the layout: not
// empty, no '/', not "." or "..", no leading '-', no control characters
// or spaces.
func ValidateName(field, v string) error {
	bad := func(reason string) error { return &InputError{Field: field, Value: v, Reason: reason} }
	switch {
	case v == "":
		return bad("is empty; give a plain directory name")
	case v == "." || v == "..":
		return bad("must be a plain directory name")
	case strings.ContainsAny(v, "/\\"):
		return bad("must be a single name without '/'")
	case strings.HasPrefix(v, "-") || strings.HasPrefix(v, "."):
		return bad("must not start with '-' or '.'")
	case len(v) > 128:
		return bad("is longer than 128 bytes")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return bad(fmt.Sprintf("contains %q; a directory name here holds only letters, digits, '.', '_' and '-'", r))
		}
	}
	return nil
}

// ValidateDeployPath checks the deploy root: absolute, or relative to the
// login home; no ".." element, no control characters, not "/".
func ValidateDeployPath(p string) error {
	bad := func(reason string) error { return &InputError{Field: "Path", Value: p, Reason: reason} }
	if p == "" {
		return bad("is empty; give the deploy root, e.g. /var/webapps/<Unit>")
	}
	if path.Clean(p) == "/" {
		return bad("must not be the root directory")
	}
	if strings.HasPrefix(p, "-") || strings.HasPrefix(p, "~") {
		return bad("must be an absolute path or a path relative to the login home (no '~', no leading '-')")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return bad("must not contain '..'")
		}
	}
	for _, r := range p {
		if r < ' ' || r == 0x7f || r == 0xfffd {
			return bad("must not contain control characters")
		}
	}
	return nil
}

func (l Layout) String() string {
	return fmt.Sprintf("%s/{%s,%s} (%s)", l.Root(), l.Dirs[0], l.Dirs[1], l.Current)
}
