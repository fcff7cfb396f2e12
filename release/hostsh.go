package release

import (
	"bufio"
	"context"
	"embed"
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
// and are not sent.
//
//go:embed hostsh/*.sh
var hostFS embed.FS

// hostScript joins the named files of hostsh/ (without ".sh") after
// lib.sh, as a host is sent them: without their comment-only and blank
// lines (see shtext.Strip). A file's "# After:" line names the files whose
// functions and variables it uses: they must come before it. A name that
// is not there, or a file before one it uses, is a programming error.
// The text depends only on the names, so each list is joined once per
// process: a fleet's hosts all get the same phases, and joining (the
// Strip lexer over every file) per host was a measurable part of the
// deploying process's CPU per host.
func hostScript(names ...string) string {
	key := strings.Join(names, " ")
	if s, ok := hostScripts.Load(key); ok {
		return s.(string)
	}
	s, _ := hostScripts.LoadOrStore(key, joinHostFiles(shtext.Strip, names))
	return s.(string)
}

// hostScripts holds hostScript's results, by the names joined with spaces.
var hostScripts sync.Map

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
}

// phase joins parts into one: every file once, where it first appears,
// and every input. Two parts that set an input to different values are a
// programming error.
func phase(parts ...part) part {
	var p part
	set := map[string]string{}
	for _, q := range parts {
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

// run runs the part as one script on h (one SSH session), parsing its
// output. A part with slot.sh gets its inputs (slotEnv); the others are
// not sent them.
func (p part) run(ctx context.Context, h sshx.Host, o *Options, forwardAgent bool) (*scriptOutput, error) {
	return p.runTalking(ctx, h, o, forwardAgent, nil)
}

// runTalking is run with k, if not nil, answering the script's questions
// (see runWith).
func (p part) runTalking(ctx context.Context, h sshx.Host, o *Options, forwardAgent bool, k *talk) (*scriptOutput, error) {
	in := p.in
	if slices.Contains(p.files, "slot") {
		in = append(slotEnv(o), in...)
	}
	return runWith(ctx, h, o, p.script(), in, forwardAgent, k)
}
