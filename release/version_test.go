package release_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/magefab/magefab/release"
)

func TestDefaultVersionPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(release.DefaultVersionPattern)
	for _, c := range []struct {
		tag  string
		want bool
	}{
		{"v0.1", true},
		{"v0.1.1", true},
		{"v1.2.3", true},
		{"v1.14.2.7", true},
		{"v10.0.0", true},
		{"v1", false},
		{"1.2.3", false},
		{"V1.2.3", false},
		{"v1.2.3-rc1", false},
		{"v1.2.", false},
		{"v1..2", false},
		{"v0.1.0-3-g6b4943c", false},
		{" v1.2", false},
		{"v1.2\n", false},
		{"", false},
	} {
		if got := re.MatchString(c.tag); got != c.want {
			t.Errorf("DefaultVersionPattern.MatchString(%q) = %v, want %v", c.tag, got, c.want)
		}
	}
}

func TestCompileVersionPattern(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern string
		match   string // a tag the compiled pattern must match
		wantErr bool
	}{
		{"", "v1.2.3", false},
		{release.DefaultVersionPattern, "v1.2.3", false},
		{`^release-\d+$`, "release-7", false},
		{`^v(\d+`, "", true},
		{`[`, "", true},
	} {
		re, err := release.CompileVersionPattern(c.pattern)
		if gotErr := err != nil; gotErr != c.wantErr {
			t.Errorf("CompileVersionPattern(%q) error = %v, want error %v", c.pattern, err, c.wantErr)
			continue
		}
		if err != nil {
			var ie *release.InputError
			if !errors.As(err, &ie) || ie.Field != "VersionPattern" || !strings.Contains(err.Error(), "VersionPattern") {
				t.Errorf("CompileVersionPattern(%q) error = %v, want an *InputError naming VersionPattern", c.pattern, err)
			}
			continue
		}
		if !re.MatchString(c.match) {
			t.Errorf("CompileVersionPattern(%q).MatchString(%q) = false, want true", c.pattern, c.match)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"v1.13", "v1.9", 1},
		{"v1.9", "v1.13", -1},
		{"v1.14.2", "v1.14.1", 1},
		{"v1.2", "v1.2.1", -1},
		{"v1.2.1", "v1.2", 1},
		{"v1.2.3", "v1.2.3", 0},
		{"v2.0", "v1.99.99", 1},
		{"v0.10.0", "v0.9.12", 1},
		{"v10.0", "v9.0", 1},
		{"v1.2.10", "v1.2.9", 1},
		{"v99999999999999999999.1", "v99999999999999999998.9", 1}, // beyond int64
		{"v1.02", "v1.2", -1}, // equal numbers: plain string order
		{"v1.2", "v1.02", 1},
		{"v1.2.3-rc1", "v1.2.3", 1},
		{"v1.2.3-rc2", "v1.2.3-rc10", -1},
		{"v1.2.3-alpha", "v1.2.3-beta", -1},
		{"", "v0.1", -1},
		{"", "", 0},
	} {
		got := release.CompareVersions(c.a, c.b)
		if sign(got) != c.want {
			t.Errorf("CompareVersions(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if back := release.CompareVersions(c.b, c.a); sign(back) != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %v, want %v", c.b, c.a, back, -c.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestSortVersions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		tags []string
		want []string
	}{
		{nil, nil},
		{[]string{"v0.1"}, []string{"v0.1"}},
		{
			[]string{"v1.9", "v1.13", "v1.2.1", "v1.2", "v1.14.1", "v1.14.2", "v0.1.0"},
			[]string{"v1.14.2", "v1.14.1", "v1.13", "v1.9", "v1.2.1", "v1.2", "v0.1.0"},
		},
		{
			[]string{"v1.2", "v1.02", "v1.2.0", "v1.2.0-rc1"},
			[]string{"v1.2.0-rc1", "v1.2.0", "v1.2", "v1.02"},
		},
	} {
		got := slices.Clone(c.tags)
		release.SortVersions(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("SortVersions(%q) = %q, want %q", c.tags, got, c.want)
		}
	}
}

func TestLatestVersion(t *testing.T) {
	t.Parallel()
	custom := regexp.MustCompile(`^release-\d+$`)
	for _, c := range []struct {
		tags    []string
		pattern *regexp.Regexp
		want    string
		wantOK  bool
	}{
		{nil, nil, "", false},
		{[]string{"experiment", "v1", "old-v9.9"}, nil, "", false},
		{[]string{"v1.9", "v1.13", "v1.10"}, nil, "v1.13", true},
		{[]string{"v0.1.0", "v2.0.0-rc1", "v1.9.9", "nightly"}, nil, "v1.9.9", true},
		{[]string{"v3.0", "release-9", "release-10"}, custom, "release-10", true},
	} {
		got, ok := release.LatestVersion(c.tags, c.pattern)
		if got != c.want || ok != c.wantOK {
			t.Errorf("LatestVersion(%q, %v) = %q, %v, want %q, %v", c.tags, c.pattern, got, ok, c.want, c.wantOK)
		}
	}
}

func TestNextPatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		latest, want string
	}{
		{"", "v0.1.0"},
		{"nightly", "v0.1.0"},
		{"v0.1.1", "v0.1.2"},
		{"v0.1.0", "v0.1.1"},
		{"v1.13", "v1.14"},
		{"v1.9", "v1.10"},
		{"v1.09", "v1.10"},
		{"v1.2.99", "v1.2.100"},
		{"v2.0.0-rc1", "v2.0.0-rc2"},
		{"release-41", "release-42"},
		{"v1.99999999999999999999", "v1.100000000000000000000"},
	} {
		if got := release.NextPatch(c.latest); got != c.want {
			t.Errorf("NextPatch(%q) = %q, want %q", c.latest, got, c.want)
		}
	}
}

func ExampleCompareVersions() {
	fmt.Println(release.CompareVersions("v1.13", "v1.9") > 0)
	fmt.Println(release.CompareVersions("v1.2", "v1.2.1") < 0)
	// Output:
	// true
	// true
}

func ExampleSortVersions() {
	tags := []string{"v1.9", "v1.13", "v1.14.1", "v1.14.2", "v1.2"}
	release.SortVersions(tags)
	fmt.Println(tags)
	// Output: [v1.14.2 v1.14.1 v1.13 v1.9 v1.2]
}

func ExampleLatestVersion() {
	pattern, err := release.CompileVersionPattern(release.DefaultVersionPattern)
	if err != nil {
		panic(err)
	}
	latest, ok := release.LatestVersion([]string{"v0.1.0", "v0.1.1", "nightly", "v0.2.0-rc1"}, pattern)
	fmt.Println(latest, ok)
	fmt.Println(release.NextPatch(latest))
	// Output:
	// v0.1.1 true
	// v0.1.2
}

func ExampleNextPatch() {
	for _, latest := range []string{"v0.1.1", "v1.13", "v1.9", ""} {
		fmt.Printf("%q -> %s\n", latest, release.NextPatch(latest))
	}
	// Output:
	// "v0.1.1" -> v0.1.2
	// "v1.13" -> v1.14
	// "v1.9" -> v1.10
	// "" -> v0.1.0
}

func ExampleCompileVersionPattern() {
	_, err := release.CompileVersionPattern(`^v(\d+`)
	fmt.Println(err)
	// Output: release: invalid VersionPattern "^v(\\d+": is not a valid regular expression (error parsing regexp: missing closing ): `^v(\d+`); fix it or leave it empty for ^v\d+(\.\d+)+?$
}
