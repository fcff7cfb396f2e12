package haproxy

import "context"

// ServerStat is what HAProxy's stats say of one server, for the tests of
// package haproxy_test.
type ServerStat struct {
	Status string // UP, DOWN, MAINT, ...
	Admin  int    // the admin state bits
	Maint  bool   // in maintenance
}

// ServerStats returns the stats of host's server.
func ServerStats(ctx context.Context, b *Balancer, host string) (ServerStat, error) {
	s, err := b.servers(ctx, []string{host})
	if err != nil {
		return ServerStat{}, err
	}
	st := s[host]
	return ServerStat{Status: st.status, Admin: st.admin, Maint: st.maint()}, nil
}
