package notify

import "testing"

func TestCompareURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ web, from, to, want string }{
		{"https://github.com/bueda/five", "v0.1.0", "v0.1.1", "https://github.com/bueda/five/compare/v0.1.0...v0.1.1"},
		{"https://github.com/bueda/five/", "v0.1.0", "v0.1.1", "https://github.com/bueda/five/compare/v0.1.0...v0.1.1"},
		{"https://github.com/bueda/five.git", "6b4943c", "0f1e2d3", "https://github.com/bueda/five/compare/6b4943c...0f1e2d3"},
		{"https://github.com/bueda/five", "a#b", "v1", "https://github.com/bueda/five/compare/a%23b...v1"},
		{"", "v0.1.0", "v0.1.1", ""},
		{"https://github.com/bueda/five", "", "v0.1.1", ""},
		{"https://github.com/bueda/five", "v0.1.0", "", ""},
	} {
		if got := CompareURL(c.web, c.from, c.to); got != c.want {
			t.Errorf("CompareURL(%q, %q, %q) = %q, want %q", c.web, c.from, c.to, got, c.want)
		}
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	deploy := Event{
		Kind:        KindDeploy,
		User:        "alice",
		Unit:        "five",
		Environment: "production",
		Branch:      "master",
		Release:     "v0.1.1",
		SHA:         "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
		Previous:    "v0.1.0",
		PreviousSHA: "6b4943c0000000000000000000000000000000aa",
		CompareURL:  "https://github.com/bueda/five/compare/v0.1.0...v0.1.1",
	}
	rollback := Event{
		Kind:        KindRollback,
		User:        "alice",
		Unit:        "five",
		Environment: "production",
		Release:     "v0.1.0",
		Previous:    "v0.1.1",
		CompareURL:  "https://github.com/bueda/five/compare/v0.1.1...v0.1.0",
	}
	with := func(e Event, f func(*Event)) Event { f(&e); return e }

	for _, c := range []struct {
		name string
		e    Event
		want string
	}{
		{"deploy with compare link", deploy,
			"alice is deploying five master (v0.1.0..v0.1.1) to production https://github.com/bueda/five/compare/v0.1.0...v0.1.1"},
		{"deploy without compare link", with(deploy, func(e *Event) { e.CompareURL = "" }),
			"alice is deploying five master (v0.1.0..v0.1.1) to production"},
		{"empty kind is a deploy", with(deploy, func(e *Event) { e.Kind, e.CompareURL = "", "" }),
			"alice is deploying five master (v0.1.0..v0.1.1) to production"},
		{"no branch", with(deploy, func(e *Event) { e.Branch, e.CompareURL = "", "" }),
			"alice is deploying five (v0.1.0..v0.1.1) to production"},
		{"first deploy", with(deploy, func(e *Event) { e.Previous, e.PreviousSHA, e.CompareURL = "", "", "" }),
			"alice is deploying five master (v0.1.1) to production"},
		{"untagged commits", with(deploy, func(e *Event) { e.Release, e.Previous, e.CompareURL = "", "", "" }),
			"alice is deploying five master (6b4943c..0f1e2d3) to production"},
		{"unknown user", with(deploy, func(e *Event) { e.User, e.CompareURL = "", "" }),
			"someone is deploying five master (v0.1.0..v0.1.1) to production"},
		{"rollback", rollback,
			"alice rolled back five production to v0.1.0 (from v0.1.1)"},
		{"rollback without previous", with(rollback, func(e *Event) { e.Previous = "" }),
			"alice rolled back five production to v0.1.0"},
	} {
		if got := Message(c.e); got != c.want {
			t.Errorf("%s: Message() = %q, want %q", c.name, got, c.want)
		}
	}
}
