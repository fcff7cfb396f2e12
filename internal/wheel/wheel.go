// Package wheel writes Python wheels offline, for the tests, the demo and
// the benchmark, which install packages with pip --no-index from a local
// wheelhouse: a wheel of a one-module package made up on the spot (Build),
// or of a distribution installed for a local interpreter, such as Debian's
// python3-django in /usr/lib/python3/dist-packages, together with the
// distributions it requires (Python.Wheels).
//
// A wheel (PEP 427) is a zip of the package's files plus
// <name>-<version>.dist-info/ holding METADATA, WHEEL and RECORD, the list
// of every file with its sha256.
package wheel

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Build writes a pure-Python wheel of a one-module package into dir: the
// module <name with - as _>/__init__.py holds code. It returns the wheel's
// path.
func Build(dir, name, version, code string) (string, error) {
	mod := strings.ReplaceAll(name, "-", "_")
	distInfo := fmt.Sprintf("%s-%s.dist-info", mod, version)
	files := []file{
		{name: mod + "/__init__.py", body: []byte(code)},
		{name: distInfo + "/METADATA", body: fmt.Appendf(nil, "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: test package\n", name, version)},
		{name: distInfo + "/WHEEL", body: wheelFile(true, "py3-none-any")},
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", mod, version))
	return path, write(path, distInfo, files)
}

// file is one member of a wheel.
type file struct {
	name string
	body []byte
	mode os.FileMode
}

// wheelFile is the content of a WHEEL file.
func wheelFile(purelib bool, tags ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Wheel-Version: 1.0\nGenerator: magefab\nRoot-Is-Purelib: %t\n", purelib)
	for _, t := range tags {
		fmt.Fprintf(&b, "Tag: %s\n", t)
	}
	return []byte(b.String())
}

// write writes the wheel at path: files, then distInfo/RECORD. The wheel
// appears under its name only once it is complete.
func write(path, distInfo string, files []file) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".wheel-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	var record strings.Builder
	for _, f := range files {
		// Stored, not compressed: wheels stay on this machine, and
		// compressing a large package such as Django costs more than the
		// bytes it saves.
		h := &zip.FileHeader{Name: f.name, Method: zip.Store}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(f.body); err != nil {
			return err
		}
		sum := sha256.Sum256(f.body)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", csvField(f.name), base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", distInfo)
	w, err := zw.Create(distInfo + "/RECORD")
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(record.String())); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// csvField quotes a RECORD path that needs it.
func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// Normalize is a project name as PEP 503 compares them: lower case, each
// run of -, _ and . as one -.
func Normalize(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}

var separators = regexp.MustCompile(`[-_.]+`)

// escape is a name or version as a wheel's file name spells it.
func escape(s string) string {
	return unsafeChars.ReplaceAllString(s, "_")
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9.]+`)
