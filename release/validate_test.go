package release_test

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/magefab/magefab/release"
)

// checkInputError fails the test unless err is an *InputError for field
// whose message names the field and quotes the value.
func checkInputError(t *testing.T, call string, err error, field string) {
	t.Helper()
	var ie *release.InputError
	if !errors.As(err, &ie) {
		t.Errorf("%s error = %v (%T), want *release.InputError", call, err, err)
		return
	}
	msg := err.Error()
	if ie.Field != field || !strings.HasPrefix(msg, "release: invalid "+field+" ") || ie.Reason == "" {
		t.Errorf("%s error = %q (field %q), want a message about %s", call, msg, ie.Field, field)
	}
}

func TestInputErrorMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 79) + "é" + strings.Repeat("y", 300)
	for _, c := range []struct {
		err  *release.InputError
		want string
	}{
		{
			&release.InputError{Field: "tag", Value: "v1;touch /tmp/x", Reason: "bad; use v1.2.3"},
			`release: invalid tag "v1;touch /tmp/x": bad; use v1.2.3`,
		},
		{
			&release.InputError{Field: "commit", Value: "a\nb", Reason: "r"},
			`release: invalid commit "a\nb": r`,
		},
		{
			&release.InputError{Field: "Unit", Value: long, Reason: "r"},
			`release: invalid Unit "` + strings.Repeat("x", 79) + `"... (381 bytes): r`,
		},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("(%+v).Error() = %q, want %q", *c.err, got, c.want)
		}
	}
}

func TestValidateTag(t *testing.T) {
	t.Parallel()
	custom := regexp.MustCompile(`^release-\d+$`)
	for _, c := range []struct {
		tag     string
		pattern *regexp.Regexp
		want    bool   // valid
		reason  string // part of the message when invalid
	}{
		{"v0.1.1", nil, true, ""},
		{"v1.14.2", nil, true, ""},
		{"release-7", custom, true, ""},
		{"v1.2.3", custom, false, "VersionPattern"},
		{"v1", nil, false, "does not match VersionPattern"},
		{"1.2.3", nil, false, "such as v1.2.3"},
		{"", nil, false, "empty"},
		{"-v1.2", nil, false, "'-'"},
		{"v1.2 ", nil, false, "whitespace"},
		{"v1.2\tx", nil, false, "control character"},
		{"v1.2\n", nil, false, "control character"},
		{"v1.2\x00", nil, false, "control character"},
		{"v1.\xff2", nil, false, "UTF-8"},
		{"v1.2;touch /tmp/x", nil, false, ""},
		{"$(id)", nil, false, ""},
		{"v1..2", nil, false, `".."`},
		{"v1.2.lock", nil, false, ".lock"},
		{"v1.2.", nil, false, "'.'"},
		{"v1~2", nil, false, `'~'`},
		{"v1^2", nil, false, `'^'`},
		{"v1:2", nil, false, `':'`},
		{"v1?2", nil, false, `'?'`},
		{"v1*2", nil, false, `'*'`},
		{"v1[2", nil, false, `'['`},
		{`v1\2`, nil, false, `'\\'`},
		{"v1@{2}", nil, false, `"@{"`},
		{"HEAD", regexp.MustCompile(`.`), false, "HEAD"},
		{"v" + strings.Repeat("1.", 100) + "1", nil, false, "longer than 200"},
	} {
		err := release.ValidateTag(c.tag, c.pattern)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateTag(%q, %v) = %v, want valid %v", c.tag, c.pattern, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateTag("+c.tag+")", err, "tag")
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("ValidateTag(%q, %v) = %q, want it to mention %s", c.tag, c.pattern, err, c.reason)
			}
		}
	}
}

// TestValidateTagAgreesWithGit checks the ref-format rules against git
// check-ref-format: whatever git rejects, ValidateTag rejects too.
func TestValidateTagAgreesWithGit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	anything := regexp.MustCompile(`(?s).*`)
	for _, c := range []struct {
		tag    string
		gitOK  bool // git check-ref-format accepts refs/tags/<tag>
		wantOK bool // ValidateTag accepts it
	}{
		{"v1.2.3", true, true},
		{"release/v1.2", true, true},
		{"rel_2024-01", true, true},
		{"v1..2", false, false},
		{".v1", false, false},
		{"rel/.v1", false, false},
		{"v1.lock", false, false},
		{"rel.lock/v1", false, false},
		{"v1.", false, false},
		{"v1/", false, false},
		{"rel//v1", false, false},
		{"v1 2", false, false},
		{"v1\x7f", false, false},
		{"v1~", false, false},
		{"v1^", false, false},
		{"v1:", false, false},
		{"v1?", false, false},
		{"v1*", false, false},
		{"v1[", false, false},
		{`v1\`, false, false},
		{"v1@{u}", false, false},
		{"@", true, false},         // stricter: "@" alone means HEAD
		{"-v1", true, false},       // stricter: git tag would reject it anyway
		{"v1\u00a02", true, false}, // stricter: non-ASCII whitespace
		{"v1\xff", true, false},    // stricter: not UTF-8
		{"HEAD", true, false},      // stricter: ambiguous with HEAD
	} {
		out, err := exec.Command("git", "check-ref-format", "refs/tags/"+c.tag).CombinedOutput()
		if gitOK := err == nil; gitOK != c.gitOK {
			t.Errorf("git check-ref-format refs/tags/%q = %v %s, want ok %v", c.tag, err, out, c.gitOK)
		}
		if got := release.ValidateTag(c.tag, anything); (got == nil) != c.wantOK {
			t.Errorf("ValidateTag(%q, .*) = %v, want valid %v", c.tag, got, c.wantOK)
		}
	}
}

func TestValidateCommit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rev    string
		want   bool
		reason string
	}{
		{"6b4943c", true, ""},
		{"6B4943C", true, ""},
		{"abcd", true, ""},
		{strings.Repeat("a", 40), true, ""},
		{strings.Repeat("f", 64), true, ""},
		{"abc", false, "has 3 digits"},
		{strings.Repeat("a", 65), false, "has 65 digits"},
		{"", false, "empty"},
		{"$(id)", false, `contains '$'`},
		{"v1;touch /tmp/x", false, `contains 'v'`},
		{"6b4943c;rm -rf /", false, `contains ';'`},
		{"6b4943g", false, `contains 'g'`},
		{"-6b4943c", false, `contains '-'`},
		{"6b4943c\n", false, `contains '\n'`},
		{"origin/master", false, "looks like a tag or branch name"},
		{"v0.1.1", false, "looks like a tag or branch name"},
	} {
		err := release.ValidateCommit(c.rev)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateCommit(%q) = %v, want valid %v", c.rev, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateCommit", err, "commit")
			if !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), "hexadecimal digits") {
				t.Errorf("ValidateCommit(%q) = %q, want it to mention %s and what a commit looks like", c.rev, err, c.reason)
			}
		}
	}
}

func TestValidateRevision(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rev    string
		want   bool
		reason string
	}{
		{"v0.1.1", true, ""},
		{"6b4943c", true, ""},
		{"origin/master", true, ""},
		{"origin/feature/x_y-1.2", true, ""},
		{"HEAD", true, ""},
		{"", false, "empty"},
		{"-x", false, "starts with '-'"},
		{"--upload-pack=evil", false, ""},
		{"/etc/passwd", false, `starts with "/"`},
		{".hidden", false, `starts with "."`},
		{"master..evil", false, `".."`},
		{"origin//master", false, `"//"`},
		{"origin/.x", false, `"/."`},
		{"origin/", false, `ends with "/"`},
		{"v1.", false, `ends with "."`},
		{"master.lock", false, ".lock"},
		{"HEAD@{1}", false, `contains '@'`},
		{"HEAD~1", false, `contains '~'`},
		{"$(id)", false, `contains '$'`},
		{"v1;touch /tmp/x", false, `contains ';'`},
		{"a b", false, `contains ' '`},
		{"a\nb", false, `contains '\n'`},
		{"ma\xffster", false, "UTF-8"},
		{"résumé", false, `contains 'é'`},
		{strings.Repeat("a", 200), true, ""},
		{strings.Repeat("a", 201), false, "longer than 200"},
	} {
		err := release.ValidateRevision(c.rev)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateRevision(%q) = %v, want valid %v", c.rev, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateRevision", err, "revision")
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("ValidateRevision(%q) = %q, want it to mention %s", c.rev, err, c.reason)
			}
		}
	}
}

func TestValidateUnit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		want bool
	}{
		{"five", true},
		{"my-app_2.web", true},
		{"A", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-app", false},
		{".app", false},
		{"my app", false},
		{"app/x", false},
		{"../x", false},
		{"app;id", false},
		{"$(id)", false},
		{"app\n", false},
		{"café", false},
	} {
		err := release.ValidateUnit(c.name)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateUnit(%q) = %v, want valid %v", c.name, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateUnit", err, "Unit")
		}
	}
}

func TestValidateRelPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    string
		want bool
	}{
		{"settings.py", true},
		{"requirements/common.txt", true},
		{"./requirements/dev.txt", true},
		{"./-odd", true},
		{"a..b/c", true},
		{"dir with space/x.txt", true},
		{"", false},
		{"/etc/passwd", false},
		{"..", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/..", false},
		{"-r", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\xffb", false},
	} {
		err := release.ValidateRelPath("PipRequirements", c.p)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateRelPath(%q) = %v, want valid %v", c.p, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateRelPath", err, "PipRequirements")
		}
	}
}

// TestValidateRefName covers the one ref-name rule that ValidateTag and
// the git refs of private packages (pypkg) share.
func TestValidateRefName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ref    string
		want   bool
		reason string // part of the message when invalid
	}{
		{"v1.2.3", true, ""},
		{"main", true, ""},
		{"feature/x_y-1.2", true, ""},
		{"6b4943c", true, ""},
		{"", false, "is empty"},
		{"-x", false, "starts with '-'"},
		{"v1..v2", false, `contains ".."`},
		{"HEAD@{1}", false, `contains "@{"`},
		{"@", false, `is "@"`},
		{"v1^", false, `contains '^', which git does not allow in a ref name`},
		{"a b", false, "contains whitespace"},
		{"a\u00a0b", false, "contains whitespace"},
		{"a.lock/b", false, `".lock"`},
		{"a/.b", false, "starting with '.'"},
		{"a//b", false, "empty path component"},
		{"v1.", false, "ends with '.'"},
		{strings.Repeat("a", 201), false, "longer than 200"},
		// The two copies differed here; the stricter one is kept.
		{"v1\xff", false, "is not valid UTF-8"},             // pypkg let it through
		{"v1\n", false, "contains a control character"},     // pypkg said "whitespace"
		{"v1\u0085", false, "contains a control character"}, // C1, whitespace to unicode too
	} {
		err := release.ValidateRefName("git ref", c.ref)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateRefName(%q) = %v, want valid %v", c.ref, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateRefName", err, "git ref")
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("ValidateRefName(%q) = %q, want it to mention %s", c.ref, err, c.reason)
			}
		}
	}
}

// TestValidateName covers the names of the layout: the one rule that
// Layout.Validate and magetargets' Config (ReleasesRoot, ReleaseDirs,
// CurrentLink, Virtualenv) share.
func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		want   bool
		reason string
	}{
		{"releases", true, ""},
		{"a", true, ""},
		{"my-env_2.x", true, ""},
		{strings.Repeat("a", release.MaxNameLen), true, ""},
		{strings.Repeat("a", release.MaxNameLen+1), false, "longer than 128 bytes"},
		{"", false, "is empty"},
		{".", false, "starts with '.'"},
		{"..", false, "starts with '.'"},
		{".env", false, "starts with '.'"},
		{"-a", false, "starts with '-'"},
		{"a/b", false, "contains '/'"},
		{`a\b`, false, `contains '\\'`},
		{"a:b", false, "contains ':'"},
		{"a%b", false, "contains '%'"},
		{"a b", false, "contains whitespace"},
		{"a\u00a0b", false, "contains whitespace"},
		{"a\x00b", false, "control character"},
		{"a\u0085b", false, "control character"},
		{"a\xffb", false, "not valid UTF-8"},
		{"café", false, "contains 'é'"},
	} {
		err := release.ValidateName("CurrentLink", c.name)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateName(%q) = %v, want valid %v", c.name, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateName", err, "CurrentLink")
			if !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), "give a single plain name") {
				t.Errorf("ValidateName(%q) = %q, want it to mention %s and what to give", c.name, err, c.reason)
			}
		}
	}
}

// TestValidateDeployPath covers the deploy root: the one rule that
// Layout.Validate and magetargets' Config.Path share. The layout's copy
// was the laxer one; the cases marked so were accepted by it.
func TestValidateDeployPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p      string
		want   bool
		reason string
	}{
		{"/var/webapps/five", true, ""},
		{"webapps/five", true, ""},
		{"./-odd", true, ""},
		{"/srv/app+1@host,x:y", true, ""},
		{"/var/webapps/five/", true, ""},
		{strings.Repeat("a", release.MaxPathLen), true, ""},
		{"", false, "is empty"},
		{"/", false, "is the root directory"},
		{"//.", false, "is the root directory"},
		{"-rf", false, "starts with '-'"},
		{"/var/../etc", false, `has a ".." element`},
		{"..", false, `has a ".." element`},
		{"~/app", false, "contains '~'"},
		{"/var/x\ny", false, "control character"},
		{"/var/x\xff", false, "invalid UTF-8"},
		{strings.Repeat("a", release.MaxPathLen+1), false, "longer than 1024 bytes"}, // laxer copy: accepted
		{"/var/my app", false, "contains ' '"},                                       // laxer copy: accepted
		{"/var/$(id)", false, "contains '$'"},                                        // laxer copy: accepted
		{"/var/a\u0085b", false, "control character"},                                // laxer copy: accepted (C1)
		{"/var/café", false, "contains 'é'"},                                         // laxer copy: accepted
		{`/var/a"b`, false, `contains '"'`},                                          // laxer copy: accepted
	} {
		err := release.ValidateDeployPath(c.p)
		if got := err == nil; got != c.want {
			t.Errorf("ValidateDeployPath(%q) = %v, want valid %v", c.p, err, c.want)
			continue
		}
		if err != nil {
			checkInputError(t, "ValidateDeployPath", err, "Path")
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("ValidateDeployPath(%q) = %q, want it to mention %s", c.p, err, c.reason)
			}
		}
	}
}

func TestIsControl(t *testing.T) {
	t.Parallel()
	for r := rune(0); r < 0x180; r++ {
		if got, want := release.IsControl(r), unicode.IsControl(r); got != want {
			t.Errorf("IsControl(%U) = %v, want %v", r, got, want)
		}
	}
	for _, r := range []rune{'\u00a0', '\u2028', '\ufffd', 'é'} {
		if release.IsControl(r) {
			t.Errorf("IsControl(%U) = true, want false", r)
		}
	}
}
