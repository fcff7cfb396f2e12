package release

import (
	"fmt"
	"path"
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

// Validate checks Path with ValidateDeployPath and every name with
// ValidateName, and that the release dirs and the link differ.
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
		return &InputError{Field: "CurrentLink", Value: l.Current, Reason: "must differ from the release dirs; give the link another name, e.g. current"}
	}
	return nil
}

func (l Layout) String() string {
	return fmt.Sprintf("%s/{%s,%s} (%s)", l.Root(), l.Dirs[0], l.Dirs[1], l.Current)
}
