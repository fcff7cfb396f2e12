package elbtest

import (
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// TargetGroup is an Elastic Load Balancing v2 target group (behind an
// Application or Network Load Balancer) the server knows.
type TargetGroup struct {
	Name       string
	TargetType string // instance (the default) or ip
	Protocol   string // HTTP by default
	Port       int32  // the port of targets registered without one; 0 means 80

	// DeregistrationDelay is how long a deregistered target stays
	// "draining" (Target.DeregistrationInProgress) before it is gone, as
	// the target group attribute deregistration_delay.timeout_seconds
	// does. 0 means gone at once.
	DeregistrationDelay time.Duration
	// Settle is how many health checks a newly registered target answers
	// "initial" (Elb.RegistrationInProgress) before it is "healthy".
	Settle int
}

// Target is a target of a TargetGroup: an instance ID or an IP address,
// and a port.
type Target struct {
	ID   string
	Port int32 // 0 means the target group's port
}

type targetGroup struct {
	TargetGroup
	arn     string
	targets []*target // in registration order
}

type target struct {
	Target
	settling   int       // health checks left to answer "initial"
	drainUntil time.Time // deregistered, draining until then; zero when registered
}

func (t *target) drainingNow() bool { return !t.drainUntil.IsZero() }

// AddTargetGroup creates target group tg, or replaces the one of its
// name, with targets registered and healthy, and returns its ARN.
func (s *Server) AddTargetGroup(tg TargetGroup, targets ...Target) string {
	if tg.TargetType == "" {
		tg.TargetType = "instance"
	}
	if tg.Protocol == "" {
		tg.Protocol = "HTTP"
	}
	if tg.Port == 0 {
		tg.Port = 80
	}
	h := fnv.New64a()
	h.Write([]byte(tg.Name))
	g := &targetGroup{
		TargetGroup: tg,
		arn:         fmt.Sprintf("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/%s/%016x", tg.Name, h.Sum64()),
	}
	for _, t := range targets {
		if t.Port == 0 {
			t.Port = tg.Port
		}
		g.targets = append(g.targets, &target{Target: t})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = slices.DeleteFunc(s.groups, func(o *targetGroup) bool { return o.Name == tg.Name })
	s.groups = append(s.groups, g)
	return g.arn
}

// Targets returns the targets registered with target group name, in
// registration order, and whether it exists. Targets deregistered and
// still draining are not registered.
func (s *Server) Targets(name string) ([]Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	for _, g := range s.groups {
		if g.Name == name {
			out := []Target{}
			for _, t := range g.targets {
				if !t.drainingNow() {
					out = append(out, t.Target)
				}
			}
			return out, true
		}
	}
	return nil, false
}

// ELBv2 responses.

type v2GroupsResult struct {
	XMLName xml.Name `xml:"DescribeTargetGroupsResult"`
	Groups  struct {
		Members []v2Group `xml:"member"`
	} `xml:"TargetGroups"`
}

type v2Group struct {
	TargetGroupArn             string
	TargetGroupName            string
	Protocol                   string
	Port                       int32
	VpcID                      string `xml:"VpcId"`
	HealthCheckProtocol        string
	HealthCheckPort            string
	HealthCheckEnabled         bool
	HealthCheckIntervalSeconds int
	HealthCheckTimeoutSeconds  int
	HealthyThresholdCount      int
	UnhealthyThresholdCount    int
	HealthCheckPath            string
	Matcher                    struct {
		HTTPCode string `xml:"HttpCode"`
	}
	LoadBalancerArns struct {
		Members []string `xml:"member"`
	}
	TargetType    string
	IPAddressType string `xml:"IpAddressType"`
}

type v2HealthResult struct {
	XMLName      xml.Name `xml:"DescribeTargetHealthResult"`
	Descriptions struct {
		Members []v2HealthDescription `xml:"member"`
	} `xml:"TargetHealthDescriptions"`
}

type v2HealthDescription struct {
	Target struct {
		ID   string `xml:"Id"`
		Port int32
	}
	HealthCheckPort string
	TargetHealth    struct {
		State       string
		Reason      string `xml:",omitempty"`
		Description string `xml:",omitempty"`
	}
}

type v2EmptyResult struct {
	XMLName xml.Name
}

// v2Targets reads the Targets.member.N.Id and .Port parameters.
func v2Targets(req Request) ([]Target, error) {
	var out []Target
	for i := 1; ; i++ {
		p := "Targets.member." + strconv.Itoa(i)
		id := req.Params.Get(p + ".Id")
		if id == "" {
			return out, nil
		}
		t := Target{ID: id}
		if v := req.Params.Get(p + ".Port"); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("port %q of target %s is not between 1 and 65535", v, id)
			}
			t.Port = int32(n)
		}
		out = append(out, t)
	}
}

// serveELBv2 answers an ELBv2 request; s.mu is held.
func (s *Server) serveELBv2(w http.ResponseWriter, req Request, reqID string) {
	fail := func(status int, code, msg string) { queryError(w, elbv2XMLNS, status, code, msg, reqID) }
	env := elbEnvelope{XMLName: xml.Name{Local: req.Action + "Response"}, XMLNS: elbv2XMLNS, RequestID: reqID}
	if req.Action == "DescribeTargetGroups" {
		var res v2GroupsResult
		names := members(req.Params, "Names.member", "")
		arns := members(req.Params, "TargetGroupArns.member", "")
		for _, g := range s.groups {
			if (len(names) > 0 || len(arns) > 0) && !slices.Contains(names, g.Name) && !slices.Contains(arns, g.arn) {
				continue
			}
			res.Groups.Members = append(res.Groups.Members, v2GroupOf(g))
		}
		for _, n := range names {
			if !slices.ContainsFunc(s.groups, func(g *targetGroup) bool { return g.Name == n }) {
				fail(http.StatusBadRequest, "TargetGroupNotFound", "One or more target groups not found")
				return
			}
		}
		for _, a := range arns {
			if !slices.ContainsFunc(s.groups, func(g *targetGroup) bool { return g.arn == a }) {
				fail(http.StatusBadRequest, "TargetGroupNotFound", "One or more target groups not found")
				return
			}
		}
		env.Result = res
		writeXML(w, http.StatusOK, reqID, env)
		return
	}

	arn := req.Params.Get("TargetGroupArn")
	i := slices.IndexFunc(s.groups, func(g *targetGroup) bool { return g.arn == arn })
	if i < 0 {
		switch req.Action {
		case "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth":
			fail(http.StatusBadRequest, "TargetGroupNotFound", fmt.Sprintf("Target groups '%s' not found", arn))
		default:
			s.problemLocked("unexpected ELBv2 action %q", req.Action)
			fail(http.StatusBadRequest, "InvalidAction", "not served by elbtest")
		}
		return
	}
	g := s.groups[i]
	targets, err := v2Targets(req)
	if err != nil {
		fail(http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	for _, t := range targets {
		if msg := s.invalidTarget(g, t); msg != "" {
			fail(http.StatusBadRequest, "InvalidTarget", msg)
			return
		}
	}
	switch req.Action {
	case "RegisterTargets":
		if len(targets) == 0 {
			fail(http.StatusBadRequest, "ValidationError", "Targets: at least one target is required")
			return
		}
		for _, t := range targets {
			if t.Port == 0 {
				t.Port = g.Port
			}
			j := slices.IndexFunc(g.targets, func(o *target) bool { return o.Target == t })
			switch {
			case j < 0:
				g.targets = append(g.targets, &target{Target: t, settling: g.Settle})
			case g.targets[j].drainingNow():
				g.targets[j].drainUntil = time.Time{}
				g.targets[j].settling = g.Settle
			}
		}
		env.Result = v2EmptyResult{XMLName: xml.Name{Local: req.Action + "Result"}}
	case "DeregisterTargets":
		if len(targets) == 0 {
			fail(http.StatusBadRequest, "ValidationError", "Targets: at least one target is required")
			return
		}
		for _, t := range targets {
			if t.Port == 0 {
				t.Port = g.Port
			}
			j := slices.IndexFunc(g.targets, func(o *target) bool { return o.Target == t && !o.drainingNow() })
			switch {
			case j < 0: // not registered: nothing to do
			case g.DeregistrationDelay > 0:
				g.targets[j].drainUntil = time.Now().Add(g.DeregistrationDelay)
			default:
				g.targets = slices.Delete(g.targets, j, j+1)
			}
		}
		env.Result = v2EmptyResult{XMLName: xml.Name{Local: req.Action + "Result"}}
	case "DescribeTargetHealth":
		var res v2HealthResult
		if len(targets) == 0 {
			for _, t := range g.targets {
				res.Descriptions.Members = append(res.Descriptions.Members, s.targetHealth(g, t, t.Target))
			}
		}
		for _, want := range targets {
			found := false
			for _, t := range g.targets {
				if t.ID == want.ID && (want.Port == 0 || want.Port == t.Port) {
					res.Descriptions.Members = append(res.Descriptions.Members, s.targetHealth(g, t, t.Target))
					found = true
				}
			}
			if !found {
				if want.Port == 0 {
					want.Port = g.Port
				}
				res.Descriptions.Members = append(res.Descriptions.Members, s.targetHealth(g, nil, want))
			}
		}
		env.Result = res
	default:
		s.problemLocked("unexpected ELBv2 action %q", req.Action)
		fail(http.StatusBadRequest, "InvalidAction", "not served by elbtest")
		return
	}
	writeXML(w, http.StatusOK, reqID, env)
}

// invalidTarget says why t cannot be a target of g, or "" when it can;
// s.mu is held.
func (s *Server) invalidTarget(g *targetGroup, t Target) string {
	if g.TargetType == "ip" {
		if net.ParseIP(t.ID) == nil {
			return fmt.Sprintf("The IP address '%s' is not a valid IPv4 address", t.ID)
		}
		return ""
	}
	if _, ok := s.instances[t.ID]; !ok {
		return fmt.Sprintf("The following targets are not valid instances: '%s'", t.ID)
	}
	return ""
}

// targetHealth describes target t of g, registered as m (nil when it is
// not); s.mu is held.
func (s *Server) targetHealth(g *targetGroup, m *target, t Target) v2HealthDescription {
	var d v2HealthDescription
	d.Target.ID, d.Target.Port = t.ID, t.Port
	d.HealthCheckPort = strconv.Itoa(int(t.Port))
	h := &d.TargetHealth
	in := s.instances[t.ID]
	switch {
	case m == nil:
		h.State, h.Reason, h.Description = "unused", "Target.NotRegistered", "Target is not registered to the target group"
	case m.drainingNow():
		h.State, h.Reason, h.Description = "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
	case g.TargetType == "instance" && in != nil && in.State != "running":
		h.State, h.Reason, h.Description = "unused", "Target.InvalidState", "Target is in the "+in.State+" state"
	case m.settling > 0:
		m.settling--
		h.State, h.Reason, h.Description = "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
	case s.failing[t.ID]:
		h.State, h.Reason, h.Description = "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
	default:
		h.State = "healthy"
	}
	return d
}

func v2GroupOf(g *targetGroup) v2Group {
	out := v2Group{
		TargetGroupArn:             g.arn,
		TargetGroupName:            g.Name,
		Protocol:                   g.Protocol,
		Port:                       g.Port,
		VpcID:                      "vpc-0123456789abcdef0",
		HealthCheckProtocol:        g.Protocol,
		HealthCheckPort:            "traffic-port",
		HealthCheckEnabled:         true,
		HealthCheckIntervalSeconds: 30,
		HealthCheckTimeoutSeconds:  5,
		HealthyThresholdCount:      5,
		UnhealthyThresholdCount:    2,
		HealthCheckPath:            "/",
		TargetType:                 g.TargetType,
		IPAddressType:              "ipv4",
	}
	out.Matcher.HTTPCode = "200"
	return out
}
