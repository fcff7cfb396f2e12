package notify

import (
	"net/url"
	"strings"
)

// Kinds of Event.
const (
	KindDeploy   = "deploy"
	KindRollback = "rollback"
)

// Event describes one deploy or rollback. It is also the JSON body that
// Webhook posts, with a "message" field added.
//
// For a deploy, Release is the release going live and Previous the one it
// replaces. For a rollback, Release is the release rolled back to and
// Previous the one that was live before the rollback.
type Event struct {
	Kind        string   `json:"kind"`         // KindDeploy or KindRollback; "" means KindDeploy
	User        string   `json:"user"`         // who deploys, e.g. "alice"
	Unit        string   `json:"unit"`         // app name, e.g. "five"
	Environment string   `json:"environment"`  // e.g. "production"
	Branch      string   `json:"branch"`       // e.g. "master"; "" if unknown
	Release     string   `json:"release"`      // e.g. "v0.1.1"
	SHA         string   `json:"sha"`          // full commit of Release
	Previous    string   `json:"previous"`     // e.g. "v0.1.0"; "" if unknown
	PreviousSHA string   `json:"previous_sha"` // full commit of Previous; "" if unknown
	Repository  string   `json:"repository"`   // SCM URL, e.g. "git@github.com:bueda/five.git"
	CompareURL  string   `json:"compare_url"`  // see CompareURL; "" when there is none
	Hosts       []string `json:"hosts"`        // hosts that serve Release
}

// CompareURL returns the GitHub-style link that shows what changed between
// two revisions: web + "/compare/" + from + "..." + to, for example
// https://github.com/bueda/five/compare/v0.1.0...v0.1.1. A trailing "/" or
// ".git" on web is dropped. It returns "" when web, from or to is empty.
func CompareURL(web, from, to string) string {
	web = strings.TrimSuffix(strings.TrimRight(web, "/"), ".git")
	if web == "" || from == "" || to == "" {
		return ""
	}
	return web + "/compare/" + url.PathEscape(from) + "..." + url.PathEscape(to)
}

// Message is the one-line announcement that chat notifiers post:
//
//	alice is deploying five master (v0.1.0..v0.1.1) to production https://github.com/bueda/five/compare/v0.1.0...v0.1.1
//	alice rolled back five production to v0.1.0 (from v0.1.1)
//
// Missing parts are left out: no branch, no previous release, no compare
// link. A rollback line carries no compare link. A release without a name
// is shown by its short commit.
func Message(e Event) string {
	user := e.User
	if user == "" {
		user = "someone"
	}
	release := orShort(e.Release, e.SHA)
	previous := orShort(e.Previous, e.PreviousSHA)

	var b strings.Builder
	if e.Kind == KindRollback {
		b.WriteString(user + " rolled back " + e.Unit)
		if e.Environment != "" {
			b.WriteString(" " + e.Environment)
		}
		b.WriteString(" to " + release)
		if previous != "" {
			b.WriteString(" (from " + previous + ")")
		}
	} else {
		b.WriteString(user + " is deploying " + e.Unit)
		if e.Branch != "" {
			b.WriteString(" " + e.Branch)
		}
		if previous != "" {
			b.WriteString(" (" + previous + ".." + release + ")")
		} else {
			b.WriteString(" (" + release + ")")
		}
		if e.Environment != "" {
			b.WriteString(" to " + e.Environment)
		}
		if e.CompareURL != "" {
			b.WriteString(" " + e.CompareURL)
		}
	}
	return b.String()
}

// orShort returns name, or else the first 7 characters of sha.
func orShort(name, sha string) string {
	if name != "" {
		return name
	}
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
