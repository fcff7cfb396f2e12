package release

import (
	"embed"
	"strings"
)

// The scripts a host runs live in hostsh/, one file per phase or part,
// each with a header that names its inputs and what it prints. Their text
// is constant: every input reaches a script as an environment variable
// (see vars), set through sshx.Cmd.Env, which quotes every value. A phase
// is one script made of whole files joined in order (lib.sh first), so
// that it costs one SSH session.
//
//go:embed hostsh/*.sh
var hostFS embed.FS

// hostScript joins the named files of hostsh/ (without ".sh") after
// lib.sh. A name that is not there is a programming error.
func hostScript(names ...string) string {
	var b strings.Builder
	for _, n := range append([]string{"lib"}, names...) {
		text, err := hostFS.ReadFile("hostsh/" + n + ".sh")
		if err != nil {
			panic("release: no host script " + n)
		}
		b.Write(text)
		if len(text) > 0 && text[len(text)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// vars are the inputs of a host script: NAME=value pairs the script reads
// from its environment. A list is one variable, its values one per line.
type vars []string

// set adds name=value.
func (v *vars) set(name, value string) { *v = append(*v, name+"="+value) }

// list adds name with values, one per line.
func (v *vars) list(name string, values []string) { v.set(name, strings.Join(values, "\n")) }
