package elbtest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"
)

// The static credentials every request must be signed with.
const (
	AccessKeyID     = "AKIDELBTESTKEY000001"
	SecretAccessKey = "elb-test-secret"
)

// API versions and XML namespaces of the two services.
const (
	elbVersion   = "2012-06-01"
	elbv2Version = "2015-12-01"
	ec2Version   = "2016-11-15"
	elbXMLNS     = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
	elbv2XMLNS   = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
	ec2XMLNS     = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// Instance is an EC2 instance the server knows.
type Instance struct {
	ID             string // e.g. i-0123456789abcdef0
	State          string // EC2 state: running, stopped, pending, terminated, ...; "" means running
	DNSName        string // public DNS name; "" for none
	PrivateDNSName string // private DNS name
}

// Request is one request the server answered.
type Request struct {
	Service string     // signing name from the Authorization header: elasticloadbalancing (Classic and v2) or ec2
	Region  string     // signing region
	Action  string     // e.g. DescribeInstanceHealth
	Params  url.Values // form parameters without Action and Version
}

// A Server is an AWS endpoint serving Classic ELB and EC2 on loopback.
// Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:port, without a trailing
	// slash.
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	instances map[string]*Instance     // by ID
	lbs       map[string][]*member     // registered instances by load balancer, in registration order
	draining  map[string]time.Duration // connection draining timeout by load balancer
	groups    []*targetGroup           // ELBv2 target groups, in creation order
	failing   map[string]bool          // instance IDs and IP addresses that fail every health check
	faults    map[string]string        // error code by action
	requests  []Request                // since the last TakeRequests
	served    int                      // requests ever answered, for request IDs
	settle    int
	ec2Fault  string
	errs      []error
}

type member struct {
	id         string
	settling   int       // health checks left to answer OutOfService
	unhealthy  bool      // fails its health check: OutOfService while it runs
	drainUntil time.Time // deregistered, draining until then; zero when registered
}

// drainingNow reports whether m was deregistered and is still draining.
func (m *member) drainingNow() bool { return !m.drainUntil.IsZero() }

// NewServer starts and returns a Server with no instances and no load
// balancers. Call Close when done.
func NewServer() *Server {
	s := &Server{
		instances: map[string]*Instance{},
		lbs:       map[string][]*member{},
		draining:  map[string]time.Duration{},
		failing:   map[string]bool{},
		faults:    map[string]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down and waits for the requests in flight.
func (s *Server) Close() { s.srv.Close() }

// AddInstance adds in, or replaces the instance with its ID (to change its
// state, for example).
func (s *Server) AddInstance(in Instance) {
	if in.State == "" {
		in.State = "running"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[in.ID] = &in
}

// AddLoadBalancer creates load balancer name, or replaces it, with the
// instances ids registered, in that order. Registered instances that are
// running are InService from the start.
func (s *Server) AddLoadBalancer(name string, ids ...string) {
	ms := []*member{}
	for _, id := range ids {
		ms = append(ms, &member{id: id})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lbs[name] = ms
}

// Registered returns the IDs of the instances registered with load
// balancer name, in registration order, and whether it exists. Instances
// deregistered and still draining are not registered.
func (s *Server) Registered(name string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ms, ok := s.lbs[name]
	if !ok {
		return nil, false
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		if !m.drainingNow() {
			ids = append(ids, m.id)
		}
	}
	return ids, true
}

// SetConnectionDraining sets the connection draining timeout of load
// balancer lb: an instance deregistered from it from now on is still
// reported InService, with the description "Instance deregistration
// currently in progress.", for d, and then no longer reported, as AWS
// does while the instance's connections finish. The default, 0, is
// connection draining disabled: a deregistered instance is gone at once.
func (s *Server) SetConnectionDraining(lb string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining[lb] = d
}

// SetUnhealthy makes the instance or IP address id fail every health
// check (unhealthy true) or pass them again (false), in every load
// balancer and target group, including those it is registered with later:
// an instance whose app never comes up. A Classic load balancer reports
// it OutOfService, a target group unhealthy.
func (s *Server) SetUnhealthy(id string, unhealthy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if unhealthy {
		s.failing[id] = true
	} else {
		delete(s.failing, id)
	}
}

// Fail makes every request for action (e.g.
// DeregisterInstancesFromLoadBalancer, DeregisterTargets) answer with the
// error code, e.g. AccessDenied, as AWS answers a caller whose policy
// does not allow it; "" serves the action again. The request is recorded
// all the same.
func (s *Server) Fail(action, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == "" {
		delete(s.faults, action)
	} else {
		s.faults[action] = code
	}
}

// expireLocked forgets the members and targets whose draining ended;
// s.mu is held.
func (s *Server) expireLocked() {
	now := time.Now()
	gone := func(drainUntil time.Time) bool { return !drainUntil.IsZero() && !now.Before(drainUntil) }
	for name, ms := range s.lbs {
		s.lbs[name] = slices.DeleteFunc(ms, func(m *member) bool { return gone(m.drainUntil) })
	}
	for _, g := range s.groups {
		g.targets = slices.DeleteFunc(g.targets, func(t *target) bool { return gone(t.drainUntil) })
	}
}

// SetSettle sets how many health checks an instance registered from now
// on answers OutOfService ("Instance registration is still in progress")
// before it is InService. The default is 0.
func (s *Server) SetSettle(checks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle = checks
}

// SetOutOfService makes instance id, registered with load balancer lb,
// fail its health check (out true) or pass it again (out false): while it
// fails it is OutOfService though it runs, as an instance whose app is
// down or slow is ("Instance has failed at least the UnhealthyThreshold
// number of health checks consecutively."). It reports whether lb holds
// id.
func (s *Server) SetOutOfService(lb, id string, out bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.lbs[lb] {
		if m.id == id {
			m.unhealthy = out
			return true
		}
	}
	return false
}

// FailEC2 makes every DescribeInstances answer with the EC2 error code,
// e.g. UnauthorizedOperation; "" serves them again.
func (s *Server) FailEC2(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ec2Fault = code
}

// Requests returns the requests answered since the server started or
// TakeRequests was last called, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneRequests(s.requests)
}

// TakeRequests returns what Requests does and forgets those requests.
func (s *Server) TakeRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

func cloneRequests(rs []Request) []Request {
	out := make([]Request, len(rs))
	for i, r := range rs {
		r.Params = cloneValues(r.Params)
		out[i] = r
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// Err reports the requests the server could not make sense of since it
// started, one line each, or nil when there were none.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// problem records a request the server could not make sense of.
// s.mu must not be held.
func (s *Server) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problemLocked(format, args...)
}

func (s *Server) problemLocked(format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf("elbtest: "+format, args...))
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		s.problem("%s %s, want POST /", r.Method, r.URL.Path)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := r.ParseForm(); err != nil {
		// A client that gives up mid-request (a canceled context, a
		// deadline) leaves a truncated body: not a protocol problem.
		if r.Context().Err() == nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			s.problem("parse form: %v", err)
		}
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != AccessKeyID {
		s.problem("Authorization %q is not a SigV4 signature with elbtest.AccessKeyID", r.Header.Get("Authorization"))
		elbError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.", "")
		return
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		if k != "Action" && k != "Version" {
			params[k] = v
		}
	}
	req := Request{Service: m[3], Region: m[2], Action: r.PostForm.Get("Action"), Params: params}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Service: req.Service, Region: req.Region, Action: req.Action, Params: cloneValues(params)})
	s.served++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.served)

	s.expireLocked()
	version := r.PostForm.Get("Version")
	if code, ok := s.faults[req.Action]; ok {
		status := http.StatusBadRequest
		if code == "AccessDenied" {
			status = http.StatusForbidden
		}
		msg := fmt.Sprintf("User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: %s:%s", req.Service, req.Action)
		switch version {
		case ec2Version:
			ec2Error(w, code, msg, reqID)
		case elbv2Version:
			queryError(w, elbv2XMLNS, status, code, msg, reqID)
		default:
			queryError(w, elbXMLNS, status, code, msg, reqID)
		}
		return
	}
	switch {
	case req.Service == "elasticloadbalancing" && version == elbVersion:
		s.serveELB(w, req, reqID)
	case req.Service == "elasticloadbalancing" && version == elbv2Version:
		s.serveELBv2(w, req, reqID)
	case req.Service == "ec2" && version == ec2Version:
		s.serveEC2(w, req, reqID)
	default:
		s.problemLocked("service %q with Version %q", req.Service, version)
		elbError(w, http.StatusBadRequest, "InvalidAction", "unknown service or version", reqID)
	}
}
