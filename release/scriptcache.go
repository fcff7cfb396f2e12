package release

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/magefab/magefab/sshx"
)

// A phase's script is 18 to 21 KB, and the switch sends the detached part
// (MF_DETACHED) too: sent inline, in each session's exec request, they
// are the largest cost per host of the deploying process (quoting,
// encrypting, and the SSH connection's buffers, which grow to the largest
// packet and stay). So a host over SSH keeps the scripts it was sent in a
// cache of its own, the login user's
//
//	${XDG_CACHE_HOME:-$HOME/.cache}/magefab/scripts/KEY
//
// KEY naming the text (hostText.key), and a session sends a short stub
// that runs the cached script (hitStub). When the cache lacks one, the
// stub exits with exitScriptMissing, having printed nothing, and the phase
// runs again, in a second session, with the texts as inputs: that one
// stores them, then runs the phase (missStub). A host pays that session
// once per script version. A host that cannot keep them (no HOME, a home
// it cannot write) gets them inline for as long as this process knows it
// (hostCache).

// exitScriptMissing is the exit status of hitStub when the host's script
// cache lacks a script the session needs. No host script exits with it
// (TestNoHostScriptExitsScriptMissing): with no output, it means a miss.
const exitScriptMissing = 97

// phaseScriptVar is the input that carries the phase's script to
// missStub.
const phaseScriptVar = "MF_PHASE_SCRIPT"

// unstoredResult is the result missStub prints when the host could not
// store the scripts.
const unstoredResult = "scriptcache"

// cacheDirLine sets sc_d to the host's script cache, or to "" when the
// host has neither XDG_CACHE_HOME nor HOME. The stubs' variables all start
// with sc_, which no host script uses.
const cacheDirLine = `sc_d=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}; sc_d=${sc_d:+$sc_d/magefab/scripts}` + "\n"

// hitStubs holds hitStub's results, by the keys and names a stub reads:
// a stub depends on nothing else, and every host of a fleet, in every
// session of a phase, is sent the same one.
var hitStubs sync.Map

// stubFor is hitStub, built once per process for each script and texts.
func stubFor(script *hostText, texts []textInput) string {
	k := script.key
	for _, t := range texts {
		k += " " + t.name + "=" + t.text.key
	}
	if s, ok := hitStubs.Load(k); ok {
		return s.(string)
	}
	s, _ := hitStubs.LoadOrStore(k, hitStub(script, texts))
	return s.(string)
}

// hitStub is the script a session sends to a host that may hold script
// and texts in its cache: it reads each back into a variable that is not
// exported (the phase's into sc_s, each text into its input's name), and
// exits with exitScriptMissing if one is missing or has not its length;
// then it runs the phase's script in its own shell, as sh -c would.
func hitStub(script *hostText, texts []textInput) string {
	var b strings.Builder
	b.WriteString(cacheDirLine)
	b.WriteString(`[ -n "$sc_d" ]`)
	read := func(name string, t *hostText) {
		b.WriteString(" &&\n" + name + `=$(cat "$sc_d/` + t.key + `" 2>/dev/null)`)
		if t.size >= 0 {
			b.WriteString(` && [ ${#` + name + `} = ` + strconv.Itoa(t.size) + ` ]`)
		}
	}
	read("sc_s", script)
	for _, t := range texts {
		read(t.name, t.text)
	}
	b.WriteString(" || exit " + strconv.Itoa(exitScriptMissing) + "\n")
	b.WriteString(`eval "$sc_s"` + "\n")
	return b.String()
}

// missStub is the script of a session after a miss: the phase's script
// arrives as phaseScriptVar and each text as its input, as sshx.Cmd.Env
// sets them (exported). It takes them into variables that are not
// exported (the processes the phase starts do not inherit tens of
// kilobytes of environment), stores them in the cache (umask 077; each
// file written aside, then renamed into place: a concurrent session that
// stores the same file is harmless), removes the cached files unread for
// 30 days, and runs the phase. Storing is best effort: a failure prints
// the result unstoredResult, and the phase runs all the same.
func missStub(script *hostText, texts []textInput) string {
	var b strings.Builder
	b.WriteString(cacheDirLine)
	b.WriteString("sc_s=$" + phaseScriptVar + "; unset " + phaseScriptVar + "\n")
	for _, t := range texts {
		b.WriteString("sc_v=$" + t.name + "; unset " + t.name + "; " + t.name + "=$sc_v\n")
	}
	if len(texts) > 0 {
		b.WriteString("unset sc_v\n")
	}
	b.WriteString(`if [ -n "$sc_d" ] && (umask 077 && mkdir -p "$sc_d"`)
	store := func(name string, t *hostText) {
		tmp := `"$sc_d/.` + t.key + `.$$"`
		b.WriteString(" &&\n  printf %s \"$" + name + "\" > " + tmp + ` && mv -f ` + tmp + ` "$sc_d/` + t.key + `"`)
	}
	store("sc_s", script)
	for _, t := range texts {
		store(t.name, t.text)
	}
	b.WriteString(") 2>/dev/null; then\n")
	b.WriteString(`  find "$sc_d" -type f -atime +30 -exec rm -f {} + 2>/dev/null` + "\n")
	b.WriteString("else\n")
	b.WriteString(`  [ -z "$sc_d" ] || rm -f "$sc_d"/.*.$$ 2>/dev/null` + "\n")
	b.WriteString(`  printf 'magefab:` + unstoredResult + `\tunstored\n'` + "\n")
	b.WriteString("fi\n")
	b.WriteString(`eval "$sc_s"` + "\n")
	return b.String()
}

// textVars gives the texts as inputs.
func textVars(texts []textInput) vars {
	var v vars
	for _, t := range texts {
		v.set(t.name, t.text.text)
	}
	return v
}

// textKeys are the cache keys of a session's script and texts.
func textKeys(script *hostText, texts []textInput) []string {
	keys := []string{script.key}
	for _, t := range texts {
		keys = append(keys, t.text.key)
	}
	return keys
}

// hostCaches is what this process knows of its hosts' script caches, per
// host. A host is a *sshx.Remote, held weakly: its entry goes with it
// (with its Pool). Names would not do: a process may have several pools,
// whose hosts of the same name are other machines.
type hostCaches struct {
	m sync.Map // weak.Pointer[sshx.Remote] -> *hostCache
}

// scriptCaches are this process's hosts' script caches.
var scriptCaches hostCaches

// of returns what is known of h's cache, or nil when h runs its scripts
// inline (a host that is not reached over SSH).
func (c *hostCaches) of(h sshx.Host) *hostCache {
	r, ok := h.(*sshx.Remote)
	if !ok || r == nil {
		return nil
	}
	k := weak.Make(r)
	if v, ok := c.m.Load(k); ok {
		return v.(*hostCache)
	}
	v, loaded := c.m.LoadOrStore(k, &hostCache{stored: map[string]bool{}})
	if !loaded {
		runtime.AddCleanup(r, func(k weak.Pointer[sshx.Remote]) { c.m.Delete(k) }, k)
	}
	return v.(*hostCache)
}

// hostCache is what is known of one host's script cache.
type hostCache struct {
	mu sync.Mutex
	// inline says the host keeps no script: it is sent them inline.
	inline bool
	// stored are the keys this process stored there.
	stored map[string]bool
}

// useCache says whether a session sends h the stub rather than the
// scripts.
func (c *hostCache) useCache() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.inline
}

// holds says whether this process stored every one of keys on the host.
func (c *hostCache) holds(keys []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if !c.stored[k] {
			return false
		}
	}
	return true
}

// missed records a miss of a session that began when this process had
// stored its scripts on the host (held, from holds) or not, and says
// whether to store them now: a host that lost what this process stored
// there keeps nothing, and is sent the scripts inline from now on.
func (c *hostCache) missed(held bool) (store bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if held {
		c.inline = true
	}
	return !c.inline
}

// storedKeys records a store: the keys are on the host, or, when it
// failed (ok false), the host keeps nothing and is sent the scripts
// inline from now on.
func (c *hostCache) storedKeys(keys []string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.inline = true
		return
	}
	for _, k := range keys {
		c.stored[k] = true
	}
}
