package wheel

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Python is a local interpreter and the directories it imports from. It
// caches what it learns from dpkg, and is not safe for concurrent use.
type Python struct {
	Path     string   // the interpreter, as given
	Sites    []string // the directories of its sys.path that exist, in order
	tag      string   // the interpreter tag of extension modules, e.g. cp311; "" when not CPython
	platform string   // the platform tag, e.g. linux_x86_64

	debian map[string][]string // Debian package -> the distributions it ships
	owners map[string]string   // metadata path -> the Debian package holding it; nil until read
}

// LocalPython asks the interpreter python where it imports from.
func LocalPython(python string) (*Python, error) {
	const script = `import json, sys, sysconfig
print(json.dumps({"path": [p for p in sys.path if p], "impl": sys.implementation.name,
                  "version": "%d%d" % sys.version_info[:2], "platform": sysconfig.get_platform()}))`
	out, err := exec.Command(python, "-c", script).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("wheel: %s: %v: %s", python, err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("wheel: %w", err)
	}
	var info struct {
		Path                    []string
		Impl, Version, Platform string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("wheel: reading what %s says: %w", python, err)
	}
	p := &Python{Path: python, platform: strings.NewReplacer("-", "_", ".", "_").Replace(info.Platform), debian: map[string][]string{}}
	if info.Impl == "cpython" {
		p.tag = "cp" + info.Version
	}
	for _, s := range info.Path {
		if st, err := os.Stat(s); err == nil && st.IsDir() && !slices.Contains(p.Sites, s) {
			p.Sites = append(p.Sites, s)
		}
	}
	return p, nil
}

// NotInstalledError says that a distribution is not installed for an
// interpreter.
type NotInstalledError struct {
	Name       string // the distribution, e.g. tornado
	Python     string // the interpreter
	RequiredBy string // the distribution that requires it; "" when it was asked for
}

func (e *NotInstalledError) Error() string {
	what := e.Name
	if e.RequiredBy != "" {
		what += ", which " + e.RequiredBy + " requires,"
	}
	return fmt.Sprintf("%s is not installed for %s (Debian: apt-get install %s)", what, e.Python, e.DebianPackage())
}

// DebianPackage is the Debian package that, by Debian's naming policy,
// holds the distribution for python3.
func (e *NotInstalledError) DebianPackage() string {
	return "python3-" + Normalize(e.Name)
}

// Dist is a distribution installed in a site directory, with its
// .dist-info (pip) or .egg-info (Debian, setuptools) metadata.
type Dist struct {
	Name    string // as its metadata spells it, e.g. Django
	Version string
	Site    string // the directory it is installed in
	Meta    string // its .dist-info or .egg-info directory (or egg-info file)
	py      *Python

	requires []string // Requires, once read
}

// Find looks for the distribution name in p's directories, in import
// order.
func (p *Python) Find(name string) (*Dist, error) {
	want := Normalize(name)
	for _, site := range p.Sites {
		entries, err := os.ReadDir(site)
		if err != nil {
			continue
		}
		for _, e := range entries {
			base, ok := strings.CutSuffix(e.Name(), ".dist-info")
			if !ok {
				if base, ok = strings.CutSuffix(e.Name(), ".egg-info"); !ok {
					continue
				}
			}
			n, _, _ := strings.Cut(base, "-")
			if Normalize(n) != want {
				continue
			}
			d, err := p.dist(filepath.Join(site, e.Name()))
			if err != nil {
				return nil, err
			}
			if Normalize(d.Name) == want {
				return d, nil
			}
		}
	}
	return nil, &NotInstalledError{Name: name, Python: p.Path}
}

// dist reads the distribution whose metadata is meta.
func (p *Python) dist(meta string) (*Dist, error) {
	d := &Dist{Site: filepath.Dir(meta), Meta: meta, py: p}
	text, err := d.metadata()
	if err != nil {
		return nil, err
	}
	h := headers(text)
	d.Name, d.Version = first(h["Name"]), first(h["Version"])
	if d.Name == "" || d.Version == "" {
		return nil, fmt.Errorf("wheel: %s gives no Name or Version", meta)
	}
	return d, nil
}

func (d *Dist) egg() bool { return strings.HasSuffix(d.Meta, ".egg-info") }

// metadata is the text of METADATA (dist-info) or PKG-INFO (egg-info).
func (d *Dist) metadata() (string, error) {
	name := filepath.Join(d.Meta, "METADATA")
	if d.egg() {
		name = filepath.Join(d.Meta, "PKG-INFO")
		if st, err := os.Stat(d.Meta); err == nil && !st.IsDir() {
			name = d.Meta
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("wheel: %w", err)
	}
	return string(b), nil
}

// Requires returns the distribution's requirements, PEP 508 strings: what
// its metadata says, plus, for a distribution that a Debian package holds,
// the Python distributions of that package's Depends (Debian drops the
// unconditional requirements from the metadata it ships).
func (d *Dist) Requires() ([]string, error) {
	if d.requires != nil {
		return d.requires, nil
	}
	text, err := d.metadata()
	if err != nil {
		return nil, err
	}
	reqs := headers(text)["Requires-Dist"]
	if d.egg() {
		if b, err := os.ReadFile(filepath.Join(d.Meta, "requires.txt")); err == nil {
			for _, r := range eggRequires(string(b)) {
				if !slices.Contains(reqs, r) {
					reqs = append(reqs, r)
				}
			}
		}
	}
	named := map[string]bool{}
	for _, r := range reqs {
		if req, ok := ParseRequirement(r); ok {
			named[Normalize(req.Name)] = true
		}
	}
	for _, name := range d.debianRequires() {
		if !named[Normalize(name)] && Normalize(name) != Normalize(d.Name) {
			named[Normalize(name)] = true
			reqs = append(reqs, name)
		}
	}
	d.requires = append([]string{}, reqs...)
	return reqs, nil
}

// Wheel writes the distribution as a wheel into dir and returns its path.
// Its files are the ones RECORD lists (dist-info) or the top-level
// packages and modules of top_level.txt (egg-info), without bytecode; a
// wheel with extension modules is tagged for this interpreter and
// platform.
func (d *Dist) Wheel(dir string) (string, error) {
	files, ext, err := d.files()
	if err != nil {
		return "", err
	}
	distInfo := escape(d.Name) + "-" + escape(d.Version) + ".dist-info"
	meta, tags, err := d.distInfo(distInfo, ext)
	if err != nil {
		return "", err
	}
	files = append(files, meta...)
	p := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.whl", escape(d.Name), escape(d.Version), compressTags(tags)))
	if err := write(p, distInfo, files); err != nil {
		return "", fmt.Errorf("wheel: writing %s: %w", filepath.Base(p), err)
	}
	return p, nil
}

// files reads the distribution's files, with their paths in the wheel,
// and returns the extension modules' names among them.
func (d *Dist) files() (files []file, ext []string, err error) {
	add := func(rel string) error {
		if strings.Contains(rel, "__pycache__/") || strings.HasSuffix(rel, ".pyc") {
			return nil
		}
		full := filepath.Join(d.Site, filepath.FromSlash(rel))
		body, err := os.ReadFile(full)
		if err != nil {
			if st, lerr := os.Lstat(full); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
				return nil // a link to a file of a package that is not installed
			}
			return fmt.Errorf("wheel: %s: %w", d.Name, err)
		}
		mode := os.FileMode(0o644)
		if st, err := os.Stat(full); err == nil && st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if strings.HasSuffix(rel, ".so") || strings.HasSuffix(rel, ".pyd") {
			ext = append(ext, path.Base(rel))
		}
		files = append(files, file{name: rel, body: body, mode: mode})
		return nil
	}
	if !d.egg() {
		f, err := os.Open(filepath.Join(d.Meta, "RECORD"))
		if err != nil {
			return nil, nil, fmt.Errorf("wheel: %s has no RECORD: %w", d.Name, err)
		}
		defer f.Close()
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		rows, err := r.ReadAll()
		if err != nil {
			return nil, nil, fmt.Errorf("wheel: %s/RECORD: %w", d.Meta, err)
		}
		metaDir := filepath.Base(d.Meta) + "/"
		for _, row := range rows {
			rel := path.Clean(row[0])
			if row[0] == "" || strings.HasPrefix(rel, "../") || path.IsAbs(rel) || strings.HasPrefix(rel, metaDir) {
				continue // scripts and data outside the site dir; the metadata is written anew
			}
			if err := add(rel); err != nil {
				return nil, nil, err
			}
		}
		return files, ext, nil
	}
	tops := []string{strings.ReplaceAll(Normalize(d.Name), "-", "_")}
	if b, err := os.ReadFile(filepath.Join(d.Meta, "top_level.txt")); err == nil {
		tops = strings.Fields(string(b))
	}
	for _, top := range tops {
		root := filepath.Join(d.Site, top)
		if st, err := os.Stat(root); err == nil && st.IsDir() {
			if err := d.walk(top, add); err != nil {
				return nil, nil, err
			}
		}
		if _, err := os.Stat(root + ".py"); err == nil {
			if err := add(top + ".py"); err != nil {
				return nil, nil, err
			}
		}
		mods, _ := filepath.Glob(root + ".*.so")
		for _, m := range mods {
			if err := add(filepath.Base(m)); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("wheel: no files of %s found in %s (top level: %s)", d.Name, d.Site, strings.Join(tops, " "))
	}
	return files, ext, nil
}

// walk adds every file under the site-relative directory rel, following
// links to directories.
func (d *Dist) walk(rel string, add func(string) error) error {
	entries, err := os.ReadDir(filepath.Join(d.Site, rel))
	if err != nil {
		return fmt.Errorf("wheel: %s: %w", d.Name, err)
	}
	for _, e := range entries {
		child := rel + "/" + e.Name()
		if e.Name() == "__pycache__" {
			continue
		}
		dir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(filepath.Join(d.Site, child))
			dir = err == nil && st.IsDir()
		}
		if dir {
			err = d.walk(child, add)
		} else {
			err = add(child)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// distInfo returns the files of the wheel's dist-info directory (RECORD
// aside) and its tags.
func (d *Dist) distInfo(distInfo string, ext []string) (files []file, tags []string, err error) {
	purelib := false
	text, err := d.metadata()
	if err != nil {
		return nil, nil, err
	}
	reqs, err := d.Requires()
	if err != nil {
		return nil, nil, err
	}
	have := headers(text)["Requires-Dist"]
	var missing []string
	for _, r := range reqs {
		if !slices.Contains(have, r) {
			missing = append(missing, r)
		}
	}
	files = append(files, file{name: distInfo + "/METADATA", body: []byte(addHeaders(text, "Requires-Dist", missing))})

	copyNames := []string{"entry_points.txt", "top_level.txt"}
	if !d.egg() {
		entries, err := os.ReadDir(d.Meta)
		if err != nil {
			return nil, nil, fmt.Errorf("wheel: %w", err)
		}
		copyNames = nil
		for _, e := range entries {
			switch e.Name() {
			case "METADATA", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json":
			case "WHEEL":
				b, err := os.ReadFile(filepath.Join(d.Meta, "WHEEL"))
				if err != nil {
					return nil, nil, fmt.Errorf("wheel: %w", err)
				}
				h := headers(string(b))
				tags, purelib = h["Tag"], first(h["Root-Is-Purelib"]) == "true"
			default:
				if !e.IsDir() {
					copyNames = append(copyNames, e.Name())
				}
			}
		}
	}
	for _, n := range copyNames {
		if b, err := os.ReadFile(filepath.Join(d.Meta, n)); err == nil {
			files = append(files, file{name: distInfo + "/" + n, body: b})
		}
	}
	if len(tags) == 0 {
		purelib = len(ext) == 0
		tag, err := d.py.extTag(ext)
		if err != nil {
			return nil, nil, fmt.Errorf("wheel: %s: %w", d.Name, err)
		}
		tags = []string{tag}
	}
	files = append(files, file{name: distInfo + "/WHEEL", body: wheelFile(purelib, tags...)})
	return files, tags, nil
}

// extTag is the tag of a wheel holding the extension modules ext (file
// names such as speedups.abi3.so or _x.cpython-311-x86_64-linux-gnu.so):
// py3-none-any without any.
func (p *Python) extTag(ext []string) (string, error) {
	if len(ext) == 0 {
		return "py3-none-any", nil
	}
	if p.tag == "" {
		return "", fmt.Errorf("extension modules %s, and %s is not CPython", strings.Join(ext, " "), p.Path)
	}
	abi := "abi3"
	for _, e := range ext {
		if !strings.Contains(e, ".abi3.") {
			abi = p.tag
		}
	}
	return p.tag + "-" + abi + "-" + p.platform, nil
}

// compressTags joins tags as a wheel's file name does: py2-none-any and
// py3-none-any make py2.py3-none-any.
func compressTags(tags []string) string {
	var parts [3][]string
	for _, t := range tags {
		f := strings.SplitN(t, "-", 3)
		if len(f) != 3 {
			continue
		}
		for i, v := range f {
			if !slices.Contains(parts[i], v) {
				parts[i] = append(parts[i], v)
			}
		}
	}
	if len(parts[0]) == 0 {
		return "py3-none-any"
	}
	return strings.Join(parts[0], ".") + "-" + strings.Join(parts[1], ".") + "-" + strings.Join(parts[2], ".")
}

// Wheels writes into dir a wheel of each named distribution and of every
// distribution they require, transitively, as installed for p, and
// returns their paths. Requirements of extras are left out, and so are
// conditional ones (with a marker) that are not installed. A name or an
// unconditional requirement that is not installed is a
// *NotInstalledError.
func (p *Python) Wheels(dir string, names ...string) ([]string, error) {
	type want struct {
		name, by string
		optional bool
	}
	var queue []want
	for _, n := range names {
		queue = append(queue, want{name: n})
	}
	done := map[string]bool{}
	var paths []string
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		if done[Normalize(w.name)] {
			continue
		}
		done[Normalize(w.name)] = true
		d, err := p.Find(w.name)
		if err != nil {
			var ni *NotInstalledError
			if errors.As(err, &ni) {
				if w.optional {
					continue
				}
				ni.RequiredBy = w.by
			}
			return paths, err
		}
		path, err := d.Wheel(dir)
		if err != nil {
			return paths, err
		}
		paths = append(paths, path)
		reqs, err := d.Requires()
		if err != nil {
			return paths, err
		}
		for _, r := range reqs {
			if req, ok := ParseRequirement(r); ok && !req.Extra() {
				queue = append(queue, want{name: req.Name, by: d.Name, optional: req.Marker != ""})
			}
		}
	}
	return paths, nil
}

// debianRequires returns, for a distribution that a Debian package holds,
// the Python distributions held by the packages it Depends on (for each
// group of alternatives, the first one installed). It returns nil where
// there is no dpkg.
func (d *Dist) debianRequires() []string {
	pkg := d.py.debianOwner(d.Meta)
	if pkg == "" {
		return nil
	}
	depends, err := exec.Command("dpkg-query", "-W", "-f=${Depends}", pkg).Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, group := range strings.Split(string(depends), ",") {
		for _, alt := range strings.Split(group, "|") {
			f := strings.Fields(alt)
			if len(f) == 0 {
				continue
			}
			dep, _, _ := strings.Cut(f[0], ":")
			if !debInstalled(dep) {
				continue
			}
			if strings.HasPrefix(dep, "python3-") {
				names = append(names, d.py.debianDists(dep)...)
			}
			break
		}
	}
	return names
}

// debianOwner returns the Debian package that holds the metadata path
// meta, "" if none. The first call asks dpkg about every distribution in
// p's directories at once: each dpkg-query -S reads dpkg's whole database.
func (p *Python) debianOwner(meta string) string {
	if p.owners == nil {
		p.owners = map[string]string{}
		var metas []string
		for _, site := range p.Sites {
			entries, _ := os.ReadDir(site)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".egg-info") || strings.HasSuffix(e.Name(), ".dist-info") {
					metas = append(metas, filepath.Join(site, e.Name()))
				}
			}
		}
		if len(metas) > 0 {
			// Exit status 1 means some path has no owner; the others are listed.
			out, _ := exec.Command("dpkg-query", append([]string{"-S"}, metas...)...).Output()
			for _, line := range strings.Split(string(out), "\n") {
				owners, path, ok := strings.Cut(line, ": ")
				if !ok || strings.HasPrefix(owners, "diversion ") {
					continue
				}
				pkg, _, _ := strings.Cut(owners, ", ")
				p.owners[path] = pkg
			}
		}
	}
	return p.owners[meta]
}

func debInstalled(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", pkg).Output()
	return err == nil && strings.TrimSpace(string(out)) == "installed"
}

// debianDists returns the names of the distributions whose metadata the
// Debian package pkg installs in one of p's directories.
func (p *Python) debianDists(pkg string) []string {
	if names, ok := p.debian[pkg]; ok {
		return names
	}
	var names []string
	out, _ := exec.Command("dpkg-query", "-L", pkg).Output()
	for _, line := range strings.Split(string(out), "\n") {
		if !slices.Contains(p.Sites, filepath.Dir(line)) || !(strings.HasSuffix(line, ".egg-info") || strings.HasSuffix(line, ".dist-info")) {
			continue
		}
		if d, err := p.dist(line); err == nil {
			names = append(names, d.Name)
		}
	}
	p.debian[pkg] = names
	return names
}

// headers reads the header block of a METADATA, PKG-INFO or WHEEL file:
// each name with its values in order (continuation lines left out).
func headers(text string) map[string][]string {
	h := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			h[k] = append(h[k], strings.TrimSpace(v))
		}
	}
	return h
}

// addHeaders adds a "name: value" line per value at the end of the header
// block of text.
func addHeaders(text, name string, values []string) string {
	if len(values) == 0 {
		return text
	}
	var add strings.Builder
	for _, v := range values {
		add.WriteString(name + ": " + v + "\n")
	}
	head, body, found := strings.Cut(text, "\n\n")
	if !found {
		return strings.TrimRight(text, "\n") + "\n" + add.String()
	}
	return head + "\n" + add.String() + "\n" + body
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
