package release

import "testing"

func TestSCMHost(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ scm, kind, host string }{
		{"git@github.com:bueda/five.git", "ssh", "github.com"},
		{"github.com:bueda/five.git", "ssh", "github.com"},
		{"ssh://git@git.example.org/five.git", "ssh", "git.example.org"},
		{"ssh://git@git.example.org:22/five.git", "ssh", "git.example.org"},
		{"ssh://git@git.example.org:2222/five.git", "ssh", "[git.example.org]:2222"},
		{"git+ssh://git.example.org/five.git", "ssh", "git.example.org"},
		{"https://github.com/bueda/five.git", "other", ""},
		{"git://git.example.org/five.git", "other", ""},
		{"/srv/git/five.git", "local", ""},
		{"file:///srv/git/five.git", "local", ""},
		{"../five.git", "local", ""},
	} {
		if kind, host := scmHost(c.scm); kind != c.kind || host != c.host {
			t.Errorf("scmHost(%q) = %q, %q, want %q, %q", c.scm, kind, host, c.kind, c.host)
		}
	}
}
