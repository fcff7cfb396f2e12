package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/magefab/magefab/release/notify"
)

func ExampleMessage() {
	e := notify.Event{
		Kind:        notify.KindDeploy,
		User:        "alice",
		Unit:        "five",
		Environment: "production",
		Branch:      "master",
		Release:     "v0.1.1",
		Previous:    "v0.1.0",
		CompareURL:  notify.CompareURL("https://github.com/bueda/five", "v0.1.0", "v0.1.1"),
	}
	fmt.Println(notify.Message(e))

	e.Kind, e.Release, e.Previous = notify.KindRollback, "v0.1.0", "v0.1.1"
	fmt.Println(notify.Message(e))
	// Output:
	// alice is deploying five master (v0.1.0..v0.1.1) to production https://github.com/bueda/five/compare/v0.1.0...v0.1.1
	// alice rolled back five production to v0.1.0 (from v0.1.1)
}

func ExampleCompareURL() {
	fmt.Println(notify.CompareURL("https://github.com/bueda/five", "v0.1.0", "v0.1.1"))
	fmt.Printf("%q\n", notify.CompareURL("", "v0.1.0", "v0.1.1"))
	// Output:
	// https://github.com/bueda/five/compare/v0.1.0...v0.1.1
	// ""
}

func ExampleSend() {
	// A stand-in for Slack that accepts everything, and a chatbot whose
	// server fails.
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer slack.Close()
	chat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "room is closed", http.StatusServiceUnavailable)
	}))
	defer chat.Close()

	notifiers := []notify.Notifier{
		notify.Slack{WebhookURL: slack.URL + "/services/T0001/B0002/SlackT0ken0123456789"},
		notify.Campfire{URL: chat.URL + "/rooms/1/2-CampKey0123456789/messages"},
		notify.Airbrake{ProjectKey: "AirKey0123456789abcdef"},
	}
	e := notify.Event{Kind: notify.KindDeploy, User: "alice", Unit: "five", Environment: "production", Release: "v0.1.1"}
	for _, w := range notify.Send(context.Background(), notifiers, e, 5*time.Second) {
		fmt.Println("warning:", w)
	}
	// Output:
	// warning: notify: campfire: HTTP 503 Service Unavailable: room is closed
	// warning: notify: airbrake: ProjectID is required
}
