// Package examples holds the example projects, a Django app (django/) and a
// Tornado app (tornado/), each with the magefile.go that deploys it, as
// files that the demo and the end-to-end tests copy into a git repository
// of their own.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
)

// Django is the Django example, five: the files under django/.
//
//go:embed django/.gitignore django/*.md django/*.go django/*.py
//go:embed django/five/*.py django/five/fixtures/*.json
//go:embed django/requirements/*.txt django/scripts
var Django embed.FS

// Tornado is the Tornado example, hello: the files under tornado/.
//
//go:embed tornado/.gitignore tornado/*.md tornado/*.go tornado/*.py
//go:embed tornado/requirements/*.txt tornado/tests/*.py tornado/scripts
var Tornado embed.FS

// Names are the examples, as FS knows them.
var Names = []string{"django", "tornado"}

// FS returns the files of the example name (django or tornado), with paths
// relative to its directory: os.CopyFS(dir, fsys) makes a copy.
func FS(name string) (fs.FS, error) {
	switch name {
	case "django":
		return fs.Sub(Django, "django")
	case "tornado":
		return fs.Sub(Tornado, "tornado")
	}
	return nil, fmt.Errorf("examples: no example %q", name)
}
