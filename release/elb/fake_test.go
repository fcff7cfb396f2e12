package elb

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The test credentials every request must be signed with.
const (
	testKeyID  = "AKIDELBTESTKEY000001"
	testSecret = "elb-test-secret"
)

const (
	elbVersion = "2012-06-01"
	ec2Version = "2016-11-15"
	elbXMLNS   = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
	ec2XMLNS   = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// fakeAWS is an in-process AWS endpoint that speaks the query protocol of
// Classic ELB (DescribeInstanceHealth, RegisterInstancesWithLoadBalancer,
// DeregisterInstancesFromLoadBalancer) and of EC2 (DescribeInstances), in
// the XML shapes AWS answers with. It keeps which instances are registered
// with which load balancer and records every call.
type fakeAWS struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	instances map[string]*fakeInstance // EC2 instances by ID
	lbs       map[string][]*member     // registered instances by load balancer, in registration order
	calls     []call
	requests  int
	// settle is how many health answers a newly registered instance stays
	// OutOfService for ("registration is still in progress").
	settle int
	// ec2Fault, when set, is the error code DescribeInstances answers with.
	ec2Fault string
}

type fakeInstance struct {
	id, state, dns, privateDNS string
}

type member struct {
	id       string
	settling int
}

// call is one request the fake served.
type call struct {
	Service string // signing name from the Authorization header
	Region  string // signing region
	Action  string
	Params  url.Values // form parameters without Action and Version
}

func newFakeAWS(t *testing.T) *fakeAWS {
	t.Helper()
	f := &fakeAWS{
		t:         t,
		instances: map[string]*fakeInstance{},
		lbs:       map[string][]*member{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the endpoint to configure clients with.
func (f *fakeAWS) URL() string { return f.srv.URL }

// addInstance adds an EC2 instance in state (running, stopped, ...).
func (f *fakeAWS) addInstance(id, state, dns, privateDNS string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[id] = &fakeInstance{id: id, state: state, dns: dns, privateDNS: privateDNS}
}

// addLB creates load balancer name with ids registered and in service.
func (f *fakeAWS) addLB(name string, ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := []*member{}
	for _, id := range ids {
		ms = append(ms, &member{id: id})
	}
	f.lbs[name] = ms
}

// Calls returns the calls served so far and forgets them.
func (f *fakeAWS) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request`)

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		f.t.Errorf("fake AWS: %s %s, want POST /", r.Method, r.URL.Path)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("fake AWS: parse form: %v", err)
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != testKeyID {
		f.t.Errorf("fake AWS: Authorization %q is not a SigV4 signature with the test key", r.Header.Get("Authorization"))
		elbError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.", "")
		return
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		if k != "Action" && k != "Version" {
			params[k] = v
		}
	}
	c := call{Service: m[3], Region: m[2], Action: r.PostForm.Get("Action"), Params: params}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	f.requests++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.requests)

	version := r.PostForm.Get("Version")
	switch {
	case c.Service == "elasticloadbalancing" && version == elbVersion:
		f.serveELB(w, c, reqID)
	case c.Service == "ec2" && version == ec2Version:
		f.serveEC2(w, c, reqID)
	default:
		f.t.Errorf("fake AWS: service %q with Version %q", c.Service, version)
		elbError(w, http.StatusBadRequest, "InvalidAction", "unknown service or version", reqID)
	}
}

// members returns the values of params prefix.1.suffix, prefix.2.suffix, ...
// in order, the query protocol's encoding of a list.
func members(params url.Values, prefix, suffix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := prefix + "." + strconv.Itoa(i) + suffix
		if _, ok := params[k]; !ok {
			return out
		}
		out = append(out, params.Get(k))
	}
}

// ELB responses.

type elbEnvelope struct {
	XMLName   xml.Name
	XMLNS     string `xml:"xmlns,attr"`
	Result    any
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type elbHealthResult struct {
	XMLName xml.Name `xml:"DescribeInstanceHealthResult"`
	States  struct {
		Members []elbInstanceState `xml:"member"`
	} `xml:"InstanceStates"`
}

type elbInstanceState struct {
	Description string `xml:"Description"`
	InstanceID  string `xml:"InstanceId"`
	ReasonCode  string `xml:"ReasonCode"`
	State       string `xml:"State"`
}

type elbInstancesResult struct {
	XMLName   xml.Name
	Instances struct {
		Members []elbInstance `xml:"member"`
	} `xml:"Instances"`
}

type elbInstance struct {
	InstanceID string `xml:"InstanceId"`
}

type elbErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	XMLNS   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func elbError(w http.ResponseWriter, status int, code, msg, reqID string) {
	var e elbErrorResponse
	e.XMLNS = elbXMLNS
	e.Error.Type = "Sender"
	e.Error.Code = code
	e.Error.Message = msg
	e.RequestID = reqID
	writeXML(w, status, reqID, e)
}

func writeXML(w http.ResponseWriter, status int, requestID string, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(body)
}

func (f *fakeAWS) serveELB(w http.ResponseWriter, c call, reqID string) {
	name := c.Params.Get("LoadBalancerName")
	ms, ok := f.lbs[name]
	if !ok {
		elbError(w, http.StatusBadRequest, "LoadBalancerNotFound",
			fmt.Sprintf("There is no ACTIVE Load Balancer named '%s'", name), reqID)
		return
	}
	ids := members(c.Params, "Instances.member", ".InstanceId")
	for _, id := range ids {
		if _, ok := f.instances[id]; !ok {
			elbError(w, http.StatusBadRequest, "InvalidInstance",
				fmt.Sprintf("Could not find EC2 instance %s.", id), reqID)
			return
		}
	}
	env := elbEnvelope{XMLName: xml.Name{Local: c.Action + "Response"}, XMLNS: elbXMLNS, RequestID: reqID}
	switch c.Action {
	case "DescribeInstanceHealth":
		var res elbHealthResult
		if len(ids) == 0 {
			for _, m := range ms {
				ids = append(ids, m.id)
			}
		}
		for _, id := range ids {
			if in := f.instances[id]; in == nil || in.state == "terminated" {
				continue
			}
			res.States.Members = append(res.States.Members, f.health(ms, id))
		}
		env.Result = res
	case "RegisterInstancesWithLoadBalancer":
		for _, id := range ids {
			if !slices.ContainsFunc(ms, func(m *member) bool { return m.id == id }) {
				ms = append(ms, &member{id: id, settling: f.settle})
			}
		}
		f.lbs[name] = ms
		env.Result = instancesResult(c.Action, ms)
	case "DeregisterInstancesFromLoadBalancer":
		for _, id := range ids {
			i := slices.IndexFunc(ms, func(m *member) bool { return m.id == id })
			if i < 0 {
				elbError(w, http.StatusBadRequest, "InvalidInstance",
					fmt.Sprintf("The specified instance %s is not registered with the load balancer.", id), reqID)
				return
			}
			ms = slices.Delete(ms, i, i+1)
		}
		f.lbs[name] = ms
		env.Result = instancesResult(c.Action, ms)
	default:
		f.t.Errorf("fake AWS: unexpected ELB action %q", c.Action)
		elbError(w, http.StatusBadRequest, "InvalidAction", "not served by the fake", reqID)
		return
	}
	writeXML(w, http.StatusOK, reqID, env)
}

// health is the state the load balancer whose members are ms reports for
// instance id.
func (f *fakeAWS) health(ms []*member, id string) elbInstanceState {
	st := elbInstanceState{InstanceID: id, State: "InService", ReasonCode: "N/A", Description: "N/A"}
	i := slices.IndexFunc(ms, func(m *member) bool { return m.id == id })
	switch {
	case i < 0:
		st.State, st.Description = "OutOfService", "Instance is not currently registered with the LoadBalancer."
	case f.instances[id].state != "running":
		st.State, st.ReasonCode = "OutOfService", "Instance"
		st.Description = "Instance is in " + f.instances[id].state + " state."
	case ms[i].settling > 0:
		ms[i].settling--
		st.State, st.ReasonCode = "OutOfService", "ELB"
		st.Description = "Instance registration is still in progress."
	}
	return st
}

func instancesResult(action string, ms []*member) elbInstancesResult {
	res := elbInstancesResult{XMLName: xml.Name{Local: action + "Result"}}
	for _, m := range ms {
		res.Instances.Members = append(res.Instances.Members, elbInstance{InstanceID: m.id})
	}
	return res
}

// EC2 responses: lowerCamelCase elements, lists as item elements.

type ec2DescribeInstancesResponse struct {
	XMLName      xml.Name `xml:"DescribeInstancesResponse"`
	XMLNS        string   `xml:"xmlns,attr"`
	RequestID    string   `xml:"requestId"`
	Reservations struct {
		Items []ec2Reservation `xml:"item"`
	} `xml:"reservationSet"`
}

type ec2Reservation struct {
	ReservationID string `xml:"reservationId"`
	OwnerID       string `xml:"ownerId"`
	Instances     struct {
		Items []ec2Instance `xml:"item"`
	} `xml:"instancesSet"`
}

type ec2Instance struct {
	InstanceID string `xml:"instanceId"`
	ImageID    string `xml:"imageId"`
	State      struct {
		Code int    `xml:"code"`
		Name string `xml:"name"`
	} `xml:"instanceState"`
	PrivateDNSName string `xml:"privateDnsName"`
	DNSName        string `xml:"dnsName"`
	InstanceType   string `xml:"instanceType"`
}

type ec2ErrorResponse struct {
	XMLName xml.Name `xml:"Response"`
	Errors  struct {
		Error struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
	} `xml:"Errors"`
	RequestID string `xml:"RequestID"`
}

func ec2Error(w http.ResponseWriter, code, msg, reqID string) {
	var e ec2ErrorResponse
	e.Errors.Error.Code = code
	e.Errors.Error.Message = msg
	e.RequestID = reqID
	writeXML(w, http.StatusBadRequest, reqID, e)
}

var ec2StateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func (f *fakeAWS) serveEC2(w http.ResponseWriter, c call, reqID string) {
	if c.Action != "DescribeInstances" {
		f.t.Errorf("fake AWS: unexpected EC2 action %q", c.Action)
		ec2Error(w, "InvalidAction", "not served by the fake", reqID)
		return
	}
	if f.ec2Fault != "" {
		ec2Error(w, f.ec2Fault, "You are not authorized to perform this operation.", reqID)
		return
	}
	ids := members(c.Params, "InstanceId", "")
	if len(ids) == 0 {
		for id := range f.instances {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	for _, id := range ids {
		if _, ok := f.instances[id]; !ok {
			ec2Error(w, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id), reqID)
			return
		}
	}
	states := map[string]bool{}
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name := c.Params.Get(p + ".Name")
		if name == "" {
			break
		}
		if name != "instance-state-name" {
			ec2Error(w, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", name), reqID)
			return
		}
		for _, v := range members(c.Params, p+".Value", "") {
			states[v] = true
		}
	}
	res := ec2DescribeInstancesResponse{XMLNS: ec2XMLNS, RequestID: reqID}
	for n, id := range ids {
		in := f.instances[id]
		if len(states) > 0 && !states[in.state] {
			continue
		}
		item := ec2Instance{
			InstanceID:     in.id,
			ImageID:        "ami-0123456789abcdef0",
			PrivateDNSName: in.privateDNS,
			DNSName:        in.dns,
			InstanceType:   "t3.micro",
		}
		item.State.Code, item.State.Name = ec2StateCodes[in.state], in.state
		r := ec2Reservation{ReservationID: fmt.Sprintf("r-%017x", n+1), OwnerID: "123456789012"}
		r.Instances.Items = []ec2Instance{item}
		res.Reservations.Items = append(res.Reservations.Items, r)
	}
	writeXML(w, http.StatusOK, reqID, res)
}

// diffCalls reports the differences between got and want, comparing the
// parameters only where want gives them (nil Params: any).
func diffCalls(got, want []call) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "got %d calls, want %d:\n", len(got), len(want))
		for _, c := range got {
			fmt.Fprintf(&b, "\t%s %s %v\n", c.Service, c.Action, c.Params)
		}
		return b.String()
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Service != w.Service || g.Action != w.Action {
			fmt.Fprintf(&b, "call %d = %s %s, want %s %s\n", i, g.Service, g.Action, w.Service, w.Action)
			continue
		}
		if w.Region != "" && g.Region != w.Region {
			fmt.Fprintf(&b, "call %d %s signed for region %q, want %q\n", i, g.Action, g.Region, w.Region)
		}
		if w.Params != nil && g.Params.Encode() != w.Params.Encode() {
			fmt.Fprintf(&b, "call %d %s params\n\t%s\nwant\n\t%s\n", i, g.Action, g.Params.Encode(), w.Params.Encode())
		}
	}
	return b.String()
}
