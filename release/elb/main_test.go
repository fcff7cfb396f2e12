package elb

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
)

// tripwire answers every request that would leave loopback: TestMain
// points the proxy variables at it, and Go's HTTP client never proxies
// loopback addresses, so anything it sees was headed for a real network
// (AWS, the instance metadata service, STS).
var tripwire struct {
	mu    sync.Mutex
	hosts []string
}

func TestMain(m *testing.M) {
	trip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tripwire.mu.Lock()
		tripwire.hosts = append(tripwire.hosts, r.Host)
		tripwire.mu.Unlock()
		http.Error(w, "tests must not leave loopback", http.StatusForbidden)
	}))
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(k, trip.URL)
	}
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	code := m.Run()
	trip.Close()
	if hosts := tripped(); len(hosts) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: requests left loopback: %v\n", hosts)
		code = 1
	}
	os.Exit(code)
}

// tripped returns the hosts the tripwire saw and forgets them.
func tripped() []string {
	tripwire.mu.Lock()
	defer tripwire.mu.Unlock()
	h := tripwire.hosts
	tripwire.hosts = nil
	return h
}

// TestTripwire checks that the guard in TestMain catches a request to a
// non-loopback host.
func TestTripwire(t *testing.T) {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://elasticloadbalancing.us-east-1.amazonaws.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want %d from the tripwire", resp.StatusCode, http.StatusForbidden)
	}
	if got := tripped(); len(got) != 1 || got[0] != "elasticloadbalancing.us-east-1.amazonaws.com" {
		t.Errorf("tripwire saw %v, want the AWS host", got)
	}
}
