package haproxy

import "testing"

// A check running while "show stat" is read puts "* " before the last
// check's result; the result read is the last one's, without it, so an
// error naming a server reads the same whichever moment it was taken.
func TestParseStatCheckInProgress(t *testing.T) {
	out := "# pxname,svname,qcur,scur,status,check_status,\n" +
		"front,FRONTEND,,3,OPEN,,\n" +
		"app,web1,0,0,UP,L7OK,\n" +
		"app,web2,0,1,DRAIN,* L7OK,\n" +
		"app,web3,0,0,DOWN,* L4CON,\n" +
		"app,web4,0,0,no check,,\n" +
		"app,BACKEND,0,1,UP,,\n" +
		"other,web1,0,9,DOWN,L4TOUT,\n"
	m, err := parseStat("app", out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]serverStat{
		"web1": {status: "UP", check: "L7OK", checked: true},
		"web2": {status: "DRAIN", check: "L7OK", scur: 1, checked: true},
		"web3": {status: "DOWN", check: "L4CON", checked: true},
		"web4": {status: "no check"},
	}
	if len(m) != len(want) {
		t.Errorf("servers = %v, want %v", m, want)
	}
	for sv, w := range want {
		if m[sv] != w {
			t.Errorf("%s = %+v, want %+v", sv, m[sv], w)
		}
	}
	if got := m["web2"].String(); got != "DRAIN, check L7OK, 1 sessions" {
		t.Errorf("web2 reads %q", got)
	}
	if _, err := parseStat("nope", out); err == nil {
		t.Error("a backend the answer lacks: no error")
	}
}
