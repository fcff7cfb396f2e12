package examples

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEmbeddedFilesAreTheExamples checks that the embedded files of each
// example are the files of its directory that git keeps (what its
// .gitignore leaves), so that a file added to an example is not missing
// from the copies the demo and the tests deploy.
func TestEmbeddedFilesAreTheExamples(t *testing.T) {
	for _, name := range Names {
		fsys, err := FS(name)
		if err != nil {
			t.Fatal(err)
		}
		var embedded []string
		fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				embedded = append(embedded, p)
			}
			return err
		})
		ignored := gitignore(t, filepath.Join(name, ".gitignore"))
		var onDisk []string
		filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(name, p)
			rel = filepath.ToSlash(rel)
			if rel != "." && ignored(rel, d.IsDir()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() {
				onDisk = append(onDisk, rel)
			}
			return nil
		})
		slices.Sort(embedded)
		slices.Sort(onDisk)
		if !slices.Equal(embedded, onDisk) {
			t.Errorf("%s: embedded files\n  %s\nfiles on disk\n  %s\n(update the //go:embed lines in examples.go)",
				name, strings.Join(embedded, "\n  "), strings.Join(onDisk, "\n  "))
		}
		if !slices.Contains(embedded, "magefile.go") {
			t.Errorf("%s: no magefile.go", name)
		}
	}
}

// gitignore reads the patterns of the examples' .gitignore files: /dir/
// (a top-level directory) and *.ext (a file name pattern); __pycache__ is
// always ignored.
func gitignore(t *testing.T, path string) func(rel string, dir bool) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top, globs []string
	for _, line := range strings.Split(string(b), "\n") {
		switch line = strings.TrimSpace(line); {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "/"):
			top = append(top, strings.Trim(line, "/"))
		default:
			globs = append(globs, strings.TrimSuffix(line, "/"))
		}
	}
	return func(rel string, dir bool) bool {
		if dir && (slices.Contains(top, rel) || filepath.Base(rel) == "__pycache__") {
			return true
		}
		for _, g := range globs {
			if ok, _ := filepath.Match(g, filepath.Base(rel)); ok {
				return true
			}
		}
		return false
	}
}
