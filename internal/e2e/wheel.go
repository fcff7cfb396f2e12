package e2e

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BuildWheel writes a pure-Python wheel of a one-module package into dir,
// offline: a wheel is a zip of the module plus METADATA, WHEEL and RECORD.
// It returns the wheel's path.
func BuildWheel(dir, name, version, code string) (string, error) {
	mod := strings.ReplaceAll(name, "-", "_")
	distInfo := fmt.Sprintf("%s-%s.dist-info", mod, version)
	files := []struct{ name, body string }{
		{mod + "/__init__.py", code},
		{distInfo + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: test package\n", name, version)},
		{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: magefab-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", mod, version))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	var record strings.Builder
	for _, file := range files {
		w, err := zw.Create(file.name)
		if err != nil {
			return "", err
		}
		if _, err := w.Write([]byte(file.body)); err != nil {
			return "", err
		}
		sum := sha256.Sum256([]byte(file.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", file.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(file.body))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", distInfo)
	w, err := zw.Create(distInfo + "/RECORD")
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(record.String())); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return path, f.Close()
}
