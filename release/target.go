package release

// Target is the release being deployed: the commit every host checks out.
type Target struct {
	Name string // what people call it: the tag, or git describe (v0.1.0-3-g6b4943c)
	SHA  string // full commit id
	Tag  string // the release tag, "" for an untagged commit
}

// Short returns the first 7 digits of the commit.
func (t Target) Short() string {
	if len(t.SHA) > 7 {
		return t.SHA[:7]
	}
	return t.SHA
}
