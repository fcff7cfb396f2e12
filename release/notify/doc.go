// Package notify tells people and services that a release went live: once
// per deploy and once per rollback, after the switch.
//
// # Notifiers
//
// Four notifiers are built in, each a small config struct whose zero value
// is rejected with an error that names the missing field:
//
//   - Campfire posts the Message line to a Campfire chatbot URL.
//   - Airbrake records a deploy with Airbrake's v4 deploy API, so errors
//     can be told apart by release.
//   - Slack posts the Message line to an incoming webhook.
//   - Webhook posts the whole Event as JSON to any URL.
//
// Any other type that implements Notifier can be passed to Send as well.
//
// # Failures are warnings
//
// A notification never fails a deploy. Send runs every notifier at once,
// each under its own timeout, and returns one error per failed notifier,
// for the caller to print as a warning.
//
// # Secrets
//
// Chatbot and webhook URLs, API keys and header values are secrets. No
// error of this package shows them: a URL is reduced to scheme://host/…
// (also inside a wrapped *url.Error), and the configured secret values are
// masked in every message, response excerpts included.
//
// All functions are safe for concurrent use; a notifier's fields must not
// change while a notification is under way.
package notify
