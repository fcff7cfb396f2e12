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
)

// The static credentials every request must be signed with.
const (
	AccessKeyID     = "AKIDELBTESTKEY000001"
	SecretAccessKey = "elb-test-secret"
)

// API versions and XML namespaces of the two services.
const (
	elbVersion = "2012-06-01"
	ec2Version = "2016-11-15"
	elbXMLNS   = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
	ec2XMLNS   = "http://ec2.amazonaws.com/doc/2016-11-15/"
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
	Service string     // signing name from the Authorization header: elasticloadbalancing or ec2
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
	instances map[string]*Instance // by ID
	lbs       map[string][]*member // registered instances by load balancer, in registration order
	requests  []Request            // since the last TakeRequests
	served    int                  // requests ever answered, for request IDs
	settle    int
	ec2Fault  string
	errs      []error
}

type member struct {
	id        string
	settling  int  // health checks left to answer OutOfService
	unhealthy bool // fails its health check: OutOfService while it runs
}

// NewServer starts and returns a Server with no instances and no load
// balancers. Call Close when done.
func NewServer() *Server {
	s := &Server{
		instances: map[string]*Instance{},
		lbs:       map[string][]*member{},
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
// balancer name, in registration order, and whether it exists.
func (s *Server) Registered(name string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, ok := s.lbs[name]
	if !ok {
		return nil, false
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.id)
	}
	return ids, true
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

	version := r.PostForm.Get("Version")
	switch {
	case req.Service == "elasticloadbalancing" && version == elbVersion:
		s.serveELB(w, req, reqID)
	case req.Service == "ec2" && version == ec2Version:
		s.serveEC2(w, req, reqID)
	default:
		s.problemLocked("service %q with Version %q", req.Service, version)
		elbError(w, http.StatusBadRequest, "InvalidAction", "unknown service or version", reqID)
	}
}
