package magetargets

import (
	"strings"
	"testing"
	"time"
)

// The commands of Slots are rendered with the slot's values as quoted
// shell variables, which the host sets for each slot.
func TestSlotsRenderAsShellVariables(t *testing.T) {
	c := Config{Unit: "five", Slots: Slots{
		Start: "/etc/init.d/{{.Unit}}-slot start {{.Dir}} {{.Slot}} {{.Socket}} {{.Release}} {{.Port}}",
		Stop:  "systemctl stop {{.Unit}}@{{.Slot}}",
		Check: "/version/", Port: 8000, DrainTimeout: time.Second,
	}}
	s, err := c.slotOptions()
	if err != nil {
		t.Fatal(err)
	}
	want := `/etc/init.d/five-slot start "$MAGEFAB_SLOT_DIR" "$MAGEFAB_SLOT" "$MAGEFAB_SLOT_SOCKET" "$MAGEFAB_SLOT_RELEASE" 8000`
	if s.Start != want || s.Stop != `systemctl stop five@"$MAGEFAB_SLOT"` || s.Logs != "" || s.Check != "/version/" || s.Port != 8000 || s.DrainTimeout != time.Second {
		t.Errorf("slotOptions = %+v\nwant Start %s", s, want)
	}
	if s, err := (Config{Unit: "five"}).slotOptions(); s != nil || err != nil {
		t.Errorf("no Slots: %+v, %v; want the RestartCommand switch (nil)", s, err)
	}
}

// Bad Slots settings are refused, each naming its field and what to give.
func TestSlotsBadInput(t *testing.T) {
	start, stop := "/etc/init.d/five-slot start {{.Dir}} {{.Slot}}", "/etc/init.d/five-slot stop {{.Dir}} {{.Slot}}"
	for _, c := range []struct {
		s    Slots
		want string
	}{
		{Slots{Stop: stop}, "Slots.Start: is empty while other Slots fields are set"},
		{Slots{Start: start}, "Slots.Stop: is empty"},
		{Slots{Start: "run {{.Missing}}", Stop: stop}, "Slots.Start: \"run {{.Missing}}\""},
		{Slots{Start: start, Stop: stop, Logs: "tail\n-f"}, "Slots.Logs"},
		{Slots{Start: start, Stop: stop, Check: "version"}, "Slots.Check: \"version\" is not a URL path"},
		{Slots{Start: start, Stop: stop, Port: 70000}, "Slots.Port: is 70000"},
		{Slots{Start: start, Stop: stop, StartTimeout: -time.Second}, "Slots.StartTimeout: is -1s"},
		{Slots{Start: start, Stop: stop, DrainTimeout: 2 * time.Hour}, "Slots.DrainTimeout: is 2h0m0s"},
	} {
		var p problems
		Config{Unit: "five", Slots: c.s}.checkSlots(&p)
		var got []string
		for _, e := range p {
			got = append(got, e.Error())
		}
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%+v: problems %q, want one with %q", c.s, got, c.want)
		}
	}
	var p problems
	Config{Unit: "five", Slots: Slots{Start: start, Stop: stop, Check: "/version", Port: 8000}}.checkSlots(&p)
	if len(p) != 0 {
		t.Errorf("good Slots refused: %v", p)
	}
}
