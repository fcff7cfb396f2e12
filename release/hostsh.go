package release

import (
	"bufio"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/magefab/magefab/internal/shtext"
	"github.com/magefab/magefab/sshx"
)

// The scripts a host runs live in hostsh/, one file per phase or part,
// each with a header that names its inputs and what it prints. Their text
// is constant: every input reaches a script as an environment variable
// (see vars), set through sshx.Cmd.Env, which quotes every value. A phase
// is one script made of whole files joined in order (lib.sh first), so
// that it costs one SSH session; their comments stay here, for readers,
// and are not sent. A host over SSH keeps the scripts it was sent, and
// gets a short stub after that (see scriptcache.go).
//
//go:embed hostsh/*.sh
var hostFS embed.FS

// hostScript joins the named files of hostsh/ (without ".sh") after
// lib.sh, as a host is sent them: without their comment-only and blank
// lines (see shtext.Strip). A file's "# After:" line names the files whose
// functions and variables it uses: they must come before it. A name that
// is not there, or a file before one it uses, is a programming error.
func hostScript(names ...string) string { return hostTextOf(names...).text }

// hostTextOf is hostScript's text with its name in a host's script cache
// (see scriptcache.go). The text depends only on the names, so each list
// is joined, and its text hashed, once per process: a fleet's hosts all
// get the same phases, and joining (the Strip lexer over every file) per
// host was a measurable part of the deploying process's CPU per host.
func hostTextOf(names ...string) *hostText {
	key := strings.Join(names, " ")
	if s, ok := hostScripts.Load(key); ok {
		return s.(*hostText)
	}
	s, _ := hostScripts.LoadOrStore(key, newHostText(joinHostFiles(shtext.Strip, names)))
	return s.(*hostText)
}

// hostScripts holds hostTextOf's results, by the names joined with spaces.
var hostScripts sync.Map

// hostText is a constant host script, and what a host's script cache
// knows it by.
type hostText struct {
	text string
	// key names the text in a host's script cache: the first 128 bits
	// of its SHA-256, in hex.
	key string
	// size is the text's length without its trailing newlines, as a
	// host's shell reads the cached file back ($(cat FILE)) and counts
	// it (${#VAR}); -1 for a text that is not all ASCII, whose length a
	// shell may count in characters.
	size int
}

func newHostText(text string) *hostText {
	sum := sha256.Sum256([]byte(text))
	t := &hostText{text: text, key: hex.EncodeToString(sum[:16]), size: len(strings.TrimRight(text, "\n"))}
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			t.size = -1
			break
		}
	}
	return t
}

// hostSource is hostScript with the files as they are written, comments
// and all.
func hostSource(names ...string) string {
	return joinHostFiles(func(s string) string { return s }, names)
}

func joinHostFiles(trim func(string) string, names []string) string {
	var b strings.Builder
	seen := []string{"lib"}
	for _, n := range append([]string{"lib"}, names...) {
		text := hostFile(n)
		for _, dep := range hostDeps(text) {
			if !slices.Contains(seen, dep) {
				panic("release: host script " + n + " needs " + dep + " before it")
			}
		}
		seen = append(seen, n)
		text = trim(text)
		b.WriteString(text)
		if len(text) > 0 && text[len(text)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// hostFile returns the text of hostsh/<name>.sh.
func hostFile(name string) string {
	text, err := hostFS.ReadFile("hostsh/" + name + ".sh")
	if err != nil {
		panic("release: no host script " + name)
	}
	return string(text)
}

// hostDeps reads the names on a script's "# After:" line, without ".sh".
func hostDeps(text string) []string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		if rest, ok := strings.CutPrefix(line, "# After:"); ok {
			var deps []string
			for _, f := range strings.Fields(rest) {
				deps = append(deps, strings.TrimSuffix(f, ".sh"))
			}
			return deps
		}
	}
	return nil
}

// vars are the inputs of a host script: NAME=value pairs the script reads
// from its environment. A list is one variable, its values one per line.
type vars []string

// set adds name=value.
func (v *vars) set(name, value string) { *v = append(*v, name+"="+value) }

// list adds name with values, one per line.
func (v *vars) list(name string, values []string) { v.set(name, strings.Join(values, "\n")) }

// flag adds name as "1" when on, else "".
func (v *vars) flag(name string, on bool) {
	value := ""
	if on {
		value = "1"
	}
	v.set(name, value)
}

// part is a piece of a phase: files of hostsh/ (without ".sh"), in order,
// and the inputs they read.
type part struct {
	files []string
	in    vars
	// texts are the inputs whose value is a whole host script, constant
	// (the detached part of a switch): a host can keep them in its
	// script cache, as it keeps the phase's own script.
	texts []textInput
}

// textInput is an input of a part whose value is a constant host script:
// the script gets it in the variable name.
type textInput struct {
	name string
	text *hostText
}

// phase joins parts into one: every file once, where it first appears,
// and every input. Two parts that set an input to different values are a
// programming error.
func phase(parts ...part) part {
	var p part
	set := map[string]string{}
	texts := map[string]*hostText{}
	for _, q := range parts {
		for _, t := range q.texts {
			if old, ok := texts[t.name]; ok {
				if old != t.text {
					panic("release: two values for the host script input " + t.name)
				}
				continue
			}
			texts[t.name] = t.text
			p.texts = append(p.texts, t)
		}
		for _, f := range q.files {
			if !slices.Contains(p.files, f) {
				p.files = append(p.files, f)
			}
		}
		for _, kv := range q.in {
			name, value, _ := strings.Cut(kv, "=")
			if old, ok := set[name]; ok {
				if old != value {
					panic("release: two values for the host script input " + name)
				}
				continue
			}
			set[name] = value
			p.in = append(p.in, kv)
		}
	}
	return p
}

// script is the part's text as a host is sent it: lib.sh and its files.
func (p part) script() string { return hostScript(p.files...) }

// run runs the part as one script on h (one SSH session, and one more
// when the host's script cache lacks it: see runWith), parsing its
// output. A part with slot.sh gets its inputs (slotEnv); the others are
// not sent them.
func (p part) run(ctx context.Context, h sshx.Host, o *Options, forwardAgent bool) (*scriptOutput, error) {
	return p.runTalking(ctx, h, o, forwardAgent, nil)
}

// runTalking is run with a talk, made by talker if not nil, answering the
// script's questions (see runWith).
func (p part) runTalking(ctx context.Context, h sshx.Host, o *Options, forwardAgent bool, talker func() (*talk, error)) (*scriptOutput, error) {
	in := p.in
	if slices.Contains(p.files, "slot") {
		in = append(slotEnv(o), in...)
	}
	return runWith(ctx, h, o, hostTextOf(p.files...), p.texts, in, forwardAgent, talker)
}
