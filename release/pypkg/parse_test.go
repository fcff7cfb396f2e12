package pypkg

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sum64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseGood(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line string
		want Package
	}{
		{"geo-utils==1.4.2", Package{Name: "geo-utils", Version: "1.4.2"}},
		{"  Geo_Utils.x==1!2.0+local.7-r1  ", Package{Name: "Geo_Utils.x", Version: "1!2.0+local.7-r1"}},
		{"geo==1.0 sha256=" + strings.ToUpper(sum64), Package{Name: "geo", Version: "1.0", SHA256: sum64}},
		{"geo==1.0\tsha256=" + sum64 + "  # pinned", Package{Name: "geo", Version: "1.0", SHA256: sum64}},
		{"billing==git@github.com:acme/billing.git==v2.0.1", Package{Name: "billing", GitURL: "git@github.com:acme/billing.git", Ref: "v2.0.1"}},
		{"b==https://example.com/r.git#frag==release/1.x", Package{Name: "b", GitURL: "https://example.com/r.git#frag", Ref: "release/1.x"}},
		{"b==../repos/b==0123456789abcdef0123456789abcdef01234567", Package{Name: "b", GitURL: "../repos/b", Ref: "0123456789abcdef0123456789abcdef01234567"}},
		{"b==file:///srv/git/b.git==HEAD\r", Package{Name: "b", GitURL: "file:///srv/git/b.git", Ref: "HEAD"}},
		{"geo sha256=" + sum64, Package{Name: "geo", SHA256: sum64}},
	} {
		got, err := Parse(strings.NewReader("# private packages\n\n"+c.line+"\n"), "private.txt")
		c.want.File, c.want.Line = "private.txt", 3
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], c.want) {
			t.Errorf("Parse(%q) = %+v, %v, want [%+v]", c.line, got, err, c.want)
		}
	}
}

func TestParseBad(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line string
		want string // the message, without the hint at its end
	}{
		{"geo==", `pypkg: reqs.txt:2: package geo: version "" is empty`},
		{"==1.0", `pypkg: reqs.txt:2: name "" is empty`},
		{"-geo==1.0", `pypkg: reqs.txt:2: name "-geo" starts with '-'`},
		{".geo==1.0", `pypkg: reqs.txt:2: name ".geo" must start with a letter or digit`},
		{"ge$o==1.0", `pypkg: reqs.txt:2: name "ge$o" contains '$'; a name is letters, digits, '.', '_' and '-'`},
		{"geo ==1.0", `pypkg: reqs.txt:2: name "geo " contains whitespace`},
		{"geo==1.0;rm", `pypkg: reqs.txt:2: package geo: version "1.0;rm" contains ';'`},
		{"geo==-1", `pypkg: reqs.txt:2: package geo: version "-1" starts with '-'`},
		{"geo==1.0 sha256=abc", `pypkg: reqs.txt:2: package geo: sha256 "abc" has 3 characters, want 64 hex digits`},
		{"geo==1.0 sha256=" + strings.Repeat("g", 64), `pypkg: reqs.txt:2: package geo: sha256 "` + strings.Repeat("g", 64) + `" contains 'g', want 64 hex digits`},
		{"geo==1.0 extra", `pypkg: reqs.txt:2: package geo: version "1.0 extra" contains whitespace`},
		{"b==-upload-pack=x==v1", `pypkg: reqs.txt:2: package b: git URL "-upload-pack=x" starts with '-'`},
		{"b==git url==v1", `pypkg: reqs.txt:2: package b: git URL "git url" contains whitespace`},
		{"b==ext::sh -c x==v1", `pypkg: reqs.txt:2: package b: git URL "ext::sh -c x" contains whitespace`},
		{"b==ext::evil==v1", `pypkg: reqs.txt:2: package b: git URL "ext::evil" uses a transport that runs commands`},
		{"b==/srv/b.git==", `pypkg: reqs.txt:2: package b: git ref "" is empty`},
		{"b==/srv/b.git==-v1", `pypkg: reqs.txt:2: package b: git ref "-v1" starts with '-'`},
		{"b==/srv/b.git==v1..v2", `pypkg: reqs.txt:2: package b: git ref "v1..v2" contains ".."`},
		{"b==/srv/b.git==v1^", `pypkg: reqs.txt:2: package b: git ref "v1^" contains '^'`},
		{"b==/srv/b.git==HEAD@{1}", `pypkg: reqs.txt:2: package b: git ref "HEAD@{1}" contains "@{"`},
		{"b==/srv/b.git==v1 sha256=" + sum64, `pypkg: reqs.txt:2: package b: sha256= applies only to S3 archives`},
		{"b==/srv/b.git sha256=" + sum64, `pypkg: reqs.txt:2: package b: sha256= applies only to S3 archives`},
		{"b==ext::evil", `pypkg: reqs.txt:2: package b: git URL "ext::evil" uses a transport that runs commands`},
		{"b==-x/y", `pypkg: reqs.txt:2: package b: git URL "-x/y" starts with '-'`},
		{"ge$o", `pypkg: reqs.txt:2: name "ge$o" contains '$'`},
		{"b==/srv/b.git==v1==x", `pypkg: reqs.txt:2: package b: has 3 "==" separators, at most 2 are allowed`},
		{"geo==1.0\x00", `pypkg: reqs.txt:2: contains a control character`},
		{"geo==1.\xff", `pypkg: reqs.txt:2: is not valid UTF-8`},
		{"a==1\ngeo_utils==2\nGeo.Utils==3", `pypkg: reqs.txt:4: package Geo.Utils: is already listed on line 3`},
	} {
		_, err := Parse(strings.NewReader("# header\n"+c.line+"\n"), "reqs.txt")
		var pe *Error
		if err == nil || !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want an *Error", c.line, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Parse(%q) error =\n\t%v\nwant it to start with\n\t%s", c.line, err, c.want)
		}
		if !strings.Contains(c.want, "already listed") && !strings.HasSuffix(err.Error(), lineHint) {
			t.Errorf("Parse(%q) error = %v, want it to end with the hint %q", c.line, err, lineHint)
		}
	}
}

// buedafab's private requirements: a bare name is the archive of that
// name in the bucket, name==git-url the repository at its HEAD, and
// name==git-url==ref the repository at ref; magefab's stricter
// name==version lines sit beside them in the same file.
func TestParseBuedafabLines(t *testing.T) {
	t.Parallel()
	const file = `geo-utils
billing==git@github.com:bueda/billing.git
comrade==https://github.com/bueda/django-comrade.git
local==../vendor/local
plain==vendor.git
tagged==git@github.com:bueda/tagged.git==v0.2
pinned==1.4.2
`
	pkgs, err := Parse(strings.NewReader(file), "requirements/private.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pkg  Package
		line string // String()
	}{
		{Package{Name: "geo-utils"}, "geo-utils"},
		{Package{Name: "billing", GitURL: "git@github.com:bueda/billing.git", Ref: HeadRef}, "billing==git@github.com:bueda/billing.git==HEAD"},
		{Package{Name: "comrade", GitURL: "https://github.com/bueda/django-comrade.git", Ref: HeadRef}, "comrade==https://github.com/bueda/django-comrade.git==HEAD"},
		{Package{Name: "local", GitURL: "../vendor/local", Ref: HeadRef}, "local==../vendor/local==HEAD"},
		{Package{Name: "plain", GitURL: "vendor.git", Ref: HeadRef}, "plain==vendor.git==HEAD"},
		{Package{Name: "tagged", GitURL: "git@github.com:bueda/tagged.git", Ref: "v0.2"}, "tagged==git@github.com:bueda/tagged.git==v0.2"},
		{Package{Name: "pinned", Version: "1.4.2"}, "pinned==1.4.2"},
	}
	if len(pkgs) != len(want) {
		t.Fatalf("Parse gave %d packages, want %d: %+v", len(pkgs), len(want), pkgs)
	}
	for i, w := range want {
		w.pkg.File, w.pkg.Line = "requirements/private.txt", i+1
		if !reflect.DeepEqual(pkgs[i], w.pkg) {
			t.Errorf("line %d: %+v, want %+v", i+1, pkgs[i], w.pkg)
		}
		if got := pkgs[i].String(); got != w.line {
			t.Errorf("line %d: String() = %q, want %q", i+1, got, w.line)
		}
		if err := pkgs[i].validate(); err != nil {
			t.Errorf("line %d: validate() = %v", i+1, err)
		}
		if isGit := w.pkg.GitURL != ""; pkgs[i].IsGit() != isGit {
			t.Errorf("line %d: IsGit() = %v, want %v", i+1, pkgs[i].IsGit(), isGit)
		}
	}
	// The bare name is the archive <name>.tar.gz, as buedafab fetched it.
	if key, err := (S3Config{}).Key(pkgs[0]); err != nil || key != "geo-utils.tar.gz" {
		t.Errorf("Key(geo-utils) = %q, %v; want geo-utils.tar.gz", key, err)
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	t.Parallel()
	pkgs, err := Parse(strings.NewReader("ok==1\nbad==\nalso bad==1\n"), "r.txt")
	if pkgs != nil || err == nil {
		t.Fatalf("Parse = %v, %v, want no packages and an error", pkgs, err)
	}
	for _, want := range []string{"r.txt:2: package bad:", `r.txt:3: name "also bad"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "private.txt")
	if err := os.WriteFile(path, []byte("a==1\n  # note\nb==../b==main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgs, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "a", Version: "1", File: path, Line: 1},
		{Name: "b", GitURL: "../b", Ref: "main", File: path, Line: 3},
	}
	if !reflect.DeepEqual(pkgs, want) {
		t.Errorf("ParseFile = %+v, want %+v", pkgs, want)
	}
	if got := pkgs[1].String(); got != "b==../b==main" {
		t.Errorf("String() = %q, want %q", got, "b==../b==main")
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("ParseFile(missing) error = %v, want one naming the file", err)
	}
}

func TestKeyTemplate(t *testing.T) {
	t.Parallel()
	p := Package{Name: "geo", Version: "1.2"}
	for _, c := range []struct{ tmpl, want, err string }{
		{"", "geo.tar.gz", ""},
		{"pkgs/{{.Name}}-{{.Version}}.tar.gz", "pkgs/geo-1.2.tar.gz", ""},
		{"{{.Nope}}", "", "S3.KeyTemplate"},
		{"{{.Name", "", "S3.KeyTemplate"},
		{"pkgs/", "", "names no file"},
		{"/{{.Name}}", "", "starts with '/'"},
	} {
		got, err := S3Config{KeyTemplate: c.tmpl}.Key(p)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Key(%q) = %q, %v, want %q, error containing %q", c.tmpl, got, err, c.want, c.err)
		}
	}
	// A package listed by its name alone (buedafab's line) has no
	// version: a template that uses one cannot name its archive.
	bare := Package{Name: "geo"}
	for _, c := range []struct{ tmpl, want, err string }{
		{"", "geo.tar.gz", ""},
		{"pkgs/{{.Name}}.tar.gz", "pkgs/geo.tar.gz", ""},
		{"pkgs/{{.Name}}-{{.Version}}.tar.gz", "", `S3.KeyTemplate "pkgs/{{.Name}}-{{.Version}}.tar.gz" uses the version, and package geo is listed without one: give it as geo==<version>`},
		{"{{if .Version}}v/{{end}}{{.Name}}.tgz", "", "uses the version"},
	} {
		got, err := S3Config{KeyTemplate: c.tmpl}.Key(bare)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Key(%q) of a bare name = %q, %v, want %q, error containing %q", c.tmpl, got, err, c.want, c.err)
		}
	}
}
