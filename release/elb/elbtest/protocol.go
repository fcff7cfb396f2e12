package elbtest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

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

func writeXML(w http.ResponseWriter, status int, requestID string, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(body)
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
	queryError(w, elbXMLNS, status, code, msg, reqID)
}

// queryError answers with an ErrorResponse in the XML namespace ns.
func queryError(w http.ResponseWriter, ns string, status int, code, msg, reqID string) {
	var e elbErrorResponse
	e.XMLNS = ns
	e.Error.Type = "Sender"
	e.Error.Code = code
	e.Error.Message = msg
	e.RequestID = reqID
	writeXML(w, status, reqID, e)
}

// serveELB answers an elasticloadbalancing request; s.mu is held.
func (s *Server) serveELB(w http.ResponseWriter, req Request, reqID string) {
	name := req.Params.Get("LoadBalancerName")
	ms, ok := s.lbs[name]
	if !ok {
		elbError(w, http.StatusBadRequest, "LoadBalancerNotFound",
			fmt.Sprintf("There is no ACTIVE Load Balancer named '%s'", name), reqID)
		return
	}
	ids := members(req.Params, "Instances.member", ".InstanceId")
	for _, id := range ids {
		if _, ok := s.instances[id]; !ok {
			elbError(w, http.StatusBadRequest, "InvalidInstance",
				fmt.Sprintf("Could not find EC2 instance %s.", id), reqID)
			return
		}
	}
	env := elbEnvelope{XMLName: xml.Name{Local: req.Action + "Response"}, XMLNS: elbXMLNS, RequestID: reqID}
	switch req.Action {
	case "DescribeInstanceHealth":
		var res elbHealthResult
		if len(ids) == 0 {
			for _, m := range ms {
				ids = append(ids, m.id)
			}
		}
		for _, id := range ids {
			if in := s.instances[id]; in == nil || in.State == "terminated" {
				continue
			}
			res.States.Members = append(res.States.Members, s.health(ms, id))
		}
		env.Result = res
	case "RegisterInstancesWithLoadBalancer":
		for _, id := range ids {
			i := slices.IndexFunc(ms, func(m *member) bool { return m.id == id })
			switch {
			case i < 0:
				ms = append(ms, &member{id: id, settling: s.settle})
			case ms[i].drainingNow():
				// Registered again while it drains: back in, once its
				// health check passes.
				ms[i].drainUntil = time.Time{}
				ms[i].settling = s.settle
			}
		}
		s.lbs[name] = ms
		env.Result = instancesResult(req.Action, ms)
	case "DeregisterInstancesFromLoadBalancer":
		for _, id := range ids {
			i := slices.IndexFunc(ms, func(m *member) bool { return m.id == id && !m.drainingNow() })
			if i < 0 {
				elbError(w, http.StatusBadRequest, "InvalidInstance",
					fmt.Sprintf("The specified instance %s is not registered with the load balancer.", id), reqID)
				return
			}
		}
		for _, id := range ids {
			i := slices.IndexFunc(ms, func(m *member) bool { return m.id == id && !m.drainingNow() })
			if i < 0 {
				continue // named twice
			}
			if d := s.draining[name]; d > 0 {
				ms[i].drainUntil = time.Now().Add(d)
			} else {
				ms = slices.Delete(ms, i, i+1)
			}
		}
		s.lbs[name] = ms
		env.Result = instancesResult(req.Action, ms)
	default:
		s.problemLocked("unexpected ELB action %q", req.Action)
		elbError(w, http.StatusBadRequest, "InvalidAction", "not served by elbtest", reqID)
		return
	}
	writeXML(w, http.StatusOK, reqID, env)
}

// health is the state the load balancer whose members are ms reports for
// instance id; s.mu is held.
func (s *Server) health(ms []*member, id string) elbInstanceState {
	st := elbInstanceState{InstanceID: id, State: "InService", ReasonCode: "N/A", Description: "N/A"}
	i := slices.IndexFunc(ms, func(m *member) bool { return m.id == id })
	switch {
	case i < 0:
		st.State, st.Description = "OutOfService", "Instance is not currently registered with the LoadBalancer."
	case s.instances[id].State != "running":
		st.State, st.ReasonCode = "OutOfService", "Instance"
		st.Description = "Instance is in " + s.instances[id].State + " state."
	case ms[i].drainingNow():
		st.Description = "Instance deregistration currently in progress."
	case ms[i].settling > 0:
		ms[i].settling--
		st.State, st.ReasonCode = "OutOfService", "ELB"
		st.Description = "Instance registration is still in progress."
	case ms[i].unhealthy || s.failing[id]:
		st.State, st.ReasonCode = "OutOfService", "Instance"
		st.Description = "Instance has failed at least the UnhealthyThreshold number of health checks consecutively."
	}
	return st
}

func instancesResult(action string, ms []*member) elbInstancesResult {
	res := elbInstancesResult{XMLName: xml.Name{Local: action + "Result"}}
	for _, m := range ms {
		if !m.drainingNow() {
			res.Instances.Members = append(res.Instances.Members, elbInstance{InstanceID: m.id})
		}
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

// ec2Filters maps the DescribeInstances filters the server knows to the
// instance field each one matches.
var ec2Filters = map[string]func(*Instance) string{
	"instance-state-name": func(in *Instance) string { return in.State },
	"dns-name":            func(in *Instance) string { return in.DNSName },
	"private-dns-name":    func(in *Instance) string { return in.PrivateDNSName },
}

// serveEC2 answers an ec2 request; s.mu is held.
func (s *Server) serveEC2(w http.ResponseWriter, req Request, reqID string) {
	if req.Action != "DescribeInstances" {
		s.problemLocked("unexpected EC2 action %q", req.Action)
		ec2Error(w, "InvalidAction", "not served by elbtest", reqID)
		return
	}
	if s.ec2Fault != "" {
		ec2Error(w, s.ec2Fault, "You are not authorized to perform this operation.", reqID)
		return
	}
	ids := members(req.Params, "InstanceId", "")
	if len(ids) == 0 {
		for id := range s.instances {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	for _, id := range ids {
		if _, ok := s.instances[id]; !ok {
			ec2Error(w, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id), reqID)
			return
		}
	}
	// Filters are ANDed; the values of one filter are ORed.
	type filter struct {
		field  func(*Instance) string
		values []string
	}
	var filters []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name := req.Params.Get(p + ".Name")
		if name == "" {
			break
		}
		field, ok := ec2Filters[name]
		if !ok {
			ec2Error(w, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", name), reqID)
			return
		}
		filters = append(filters, filter{field, members(req.Params, p+".Value", "")})
	}
	res := ec2DescribeInstancesResponse{XMLNS: ec2XMLNS, RequestID: reqID}
	for n, id := range ids {
		in := s.instances[id]
		if slices.ContainsFunc(filters, func(f filter) bool { return !slices.Contains(f.values, f.field(in)) }) {
			continue
		}
		item := ec2Instance{
			InstanceID:     in.ID,
			ImageID:        "ami-0123456789abcdef0",
			PrivateDNSName: in.PrivateDNSName,
			DNSName:        in.DNSName,
			InstanceType:   "t3.micro",
		}
		item.State.Code, item.State.Name = ec2StateCodes[in.State], in.State
		r := ec2Reservation{ReservationID: fmt.Sprintf("r-%017x", n+1), OwnerID: "123456789012"}
		r.Instances.Items = []ec2Instance{item}
		res.Reservations.Items = append(res.Reservations.Items, r)
	}
	writeXML(w, http.StatusOK, reqID, res)
}
