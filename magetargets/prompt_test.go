package magetargets

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// testPrompter reads input, writes to the returned buffer, and has a
// terminal when terminal is true.
func testPrompter(input string, terminal bool) (*prompter, *bytes.Buffer) {
	out := new(bytes.Buffer)
	return &prompter{In: strings.NewReader(input), Out: out, IsTerminal: func() bool { return terminal }}, out
}

func TestConfirmTerminal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		input   string
		want    bool
		wantErr bool
	}{
		{"y\n", true, false},
		{"YES\n", true, false},
		{"  yes  \r\n", true, false},
		{"n\n", false, false},
		{"no\n", false, false},
		{"\n", false, false}, // the default is no
		{"y", true, false},   // no newline before the end of input
		{"maybe\ny\n", true, false},
		{"a\nb\nc\ny\n", false, true}, // three answers that are not one
		{"", false, true},             // end of input
	} {
		p, out := testPrompter(c.input, true)
		got, err := p.confirm(ctx, "Tag this release?", TagVar)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("confirm() reading %q = %v, %v, want %v, error %v", c.input, got, err, c.want, c.wantErr)
		}
		if !strings.HasPrefix(out.String(), "Tag this release? [y/N] ") {
			t.Errorf("confirm() reading %q wrote %q, want the question", c.input, out)
		}
	}
}

func TestAskTerminal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		input, def string
		want       string
		wantErr    bool
		wantOut    string
	}{
		{"\n", "v0.1.1", "v0.1.1", false, "New release tag [v0.1.1]: "},
		{"v0.2.0\n", "v0.1.1", "v0.2.0", false, "New release tag [v0.1.1]: "},
		{" v0.2.0 \n", "", "v0.2.0", false, "New release tag: "},
		{"\n", "", "", false, "New release tag: "},
		{"", "v0.1.1", "", true, "New release tag [v0.1.1]: "},
	} {
		p, out := testPrompter(c.input, true)
		got, err := p.ask(ctx, "New release tag", c.def, TagVar)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("ask(%q) reading %q = %q, %v, want %q, error %v", c.def, c.input, got, err, c.want, c.wantErr)
		}
		if out.String() != c.wantOut {
			t.Errorf("ask(%q) reading %q wrote %q, want %q", c.def, c.input, out, c.wantOut)
		}
	}
}

// TestPromptsShareInput checks that answers typed ahead are not lost
// between questions.
func TestPromptsShareInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, _ := testPrompter("y\nv0.3.0\n", true)
	yes, err := p.confirm(ctx, "Tag this release?", TagVar)
	if !yes || err != nil {
		t.Fatalf("confirm() = %v, %v, want true, nil", yes, err)
	}
	tag, err := p.ask(ctx, "New release tag", "v0.1.1", TagVar)
	if tag != "v0.3.0" || err != nil {
		t.Errorf("ask() after confirm() = %q, %v, want v0.3.0, nil", tag, err)
	}
}

func TestPromptNoTerminal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, _ := testPrompter("y\n", false)

	_, err := p.confirm(ctx, "Tag this release?", TagVar)
	want := `magetargets: cannot ask "Tag this release?": stdin is not a terminal; set MAGEFAB_TAG or MAGEFAB_YES=1`
	if err == nil || err.Error() != want {
		t.Errorf("confirm() without a terminal = %v, want %q", err, want)
	}
	_, err = p.confirm(ctx, "Restart every host?", "")
	want = `magetargets: cannot ask "Restart every host?": stdin is not a terminal; set MAGEFAB_YES=1`
	if err == nil || err.Error() != want {
		t.Errorf("confirm() without a terminal or variable = %v, want %q", err, want)
	}
	_, err = p.ask(ctx, "New release tag", "v0.1.1", TagVar)
	want = `magetargets: cannot ask "New release tag": stdin is not a terminal; set MAGEFAB_TAG=<answer> or MAGEFAB_YES=1 to accept v0.1.1`
	if err == nil || err.Error() != want {
		t.Errorf("ask() without a terminal = %v, want %q", err, want)
	}
	_, err = p.ask(ctx, "New release tag", "", TagVar)
	want = `magetargets: cannot ask "New release tag": stdin is not a terminal; set MAGEFAB_TAG=<answer>`
	if err == nil || err.Error() != want {
		t.Errorf("ask() without a terminal or default = %v, want %q", err, want)
	}
}

func TestPromptYes(t *testing.T) {
	ctx := context.Background()
	t.Setenv(YesVar, "1")
	p, out := testPrompter("", false)

	yes, err := p.confirm(ctx, "Tag this release?", TagVar)
	if !yes || err != nil {
		t.Errorf("confirm() with %s=1 = %v, %v, want true, nil", YesVar, yes, err)
	}
	got, err := p.ask(ctx, "New release tag", "v0.1.1", TagVar)
	if got != "v0.1.1" || err != nil {
		t.Errorf("ask() with %s=1 = %q, %v, want the default v0.1.1, nil", YesVar, got, err)
	}
	// With no default there is nothing to accept.
	if _, err := p.ask(ctx, "New release tag", "", TagVar); err == nil || !strings.Contains(err.Error(), TagVar) {
		t.Errorf("ask() with %s=1 and no default = %v, want an error naming %s", YesVar, err, TagVar)
	}
	if want := "Tag this release? yes (MAGEFAB_YES)\nNew release tag: v0.1.1 (MAGEFAB_YES: the suggestion)\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out, want)
	}

	t.Setenv(YesVar, "perhaps")
	if _, err := p.confirm(ctx, "Tag this release?", ""); err == nil || !strings.Contains(err.Error(), YesVar) {
		t.Errorf("confirm() with %s=perhaps = %v, want an error naming %s", YesVar, err, YesVar)
	}
}

func TestPromptTagVar(t *testing.T) {
	ctx := context.Background()
	t.Setenv(TagVar, "v0.4.0")
	p, out := testPrompter("", false)

	yes, err := p.confirm(ctx, "Tag this release?", TagVar)
	if !yes || err != nil {
		t.Errorf("confirm() with %s=v0.4.0 = %v, %v, want true, nil", TagVar, yes, err)
	}
	got, err := p.ask(ctx, "New release tag", "v0.1.1", TagVar)
	if got != "v0.4.0" || err != nil {
		t.Errorf("ask() with %s=v0.4.0 = %q, %v, want v0.4.0, nil", TagVar, got, err)
	}
	if want := "Tag this release? yes (MAGEFAB_TAG is set)\nNew release tag: v0.4.0 (from MAGEFAB_TAG)\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out, want)
	}
	// The variable answers only its own questions.
	if _, err := p.confirm(ctx, "Restart every host?", ""); err == nil {
		t.Errorf("confirm() of another question with only %s set = nil error, want one", TagVar)
	}
}

func TestPromptCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, w := io.Pipe()
	defer w.Close()
	p := &prompter{In: r, Out: io.Discard, IsTerminal: func() bool { return true }}
	_, err := p.confirm(ctx, "Tag this release?", TagVar)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("confirm() with nobody answering and a cancelled context = %v, want context.DeadlineExceeded", err)
	}
}
