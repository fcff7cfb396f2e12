package release

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/magefab/magefab/sshx"
)

// A session's stub exits with exitScriptMissing for a miss: no host
// script may exit with it, nor use the stubs' variables (sc_...), which
// the phase's shell holds.
func TestNoHostScriptExitsScriptMissing(t *testing.T) {
	t.Parallel()
	exit := regexp.MustCompile(`\b(exit|return)\s+"?` + strconv.Itoa(exitScriptMissing) + `\b`)
	vars := regexp.MustCompile(`\bsc_[A-Za-z0-9_]*`)
	names, _ := fs.Glob(hostFS, "hostsh/*.sh")
	if len(names) == 0 {
		t.Fatal("no host scripts")
	}
	for _, n := range names {
		text, _ := hostFS.ReadFile(n)
		for i, l := range strings.Split(string(text), "\n") {
			if exit.MatchString(l) {
				t.Errorf("%s:%d: %q: status %d is the script cache's miss", n, i+1, l, exitScriptMissing)
			}
			if v := vars.FindString(l); v != "" {
				t.Errorf("%s:%d: %q: %s is a variable of the script cache's stubs", n, i+1, l, v)
			}
		}
	}
}

// The stubs, run by this machine's sh: a miss exits with
// exitScriptMissing and says nothing; the second session stores the
// scripts and runs the phase; then the stub runs it from the cache. Each
// time the phase gets its text input, not exported.
func TestScriptCacheStubs(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	script := newHostText(`printf 'magefab:detached\t%s\n' "$(/bin/sh -c "$MF_DETACHED")"
printf 'magefab:exported\t%s\n' "$(/bin/sh -c 'echo "${MF_DETACHED+MF_DETACHED}${MF_PHASE_SCRIPT+MF_PHASE_SCRIPT}"')"
printf 'magefab:args\t%s\n' "$#"
`)
	texts := []textInput{{name: "MF_DETACHED", text: newHostText("echo \"it's detached\"\n\n")}}
	run := func(stub string, env ...string) (*scriptOutput, error) {
		t.Helper()
		out := &scriptOutput{host: "here"}
		cmd := sshx.NewLocal("here").Script(context.Background(), stub)
		cmd.Env = append([]string{"HOME=" + home, "XDG_CACHE_HOME="}, env...)
		cmd.Stdout, cmd.Stderr = out, out
		return out, cmd.Run()
	}
	check := func(what string, out *scriptOutput, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v: %s", what, err, out.failure(err))
		}
		if got := out.result("detached"); len(got) != 1 || got[0] != "it's detached" {
			t.Errorf("%s: the detached part said %q", what, got)
		}
		if got := out.result("exported"); len(got) != 1 || got[0] != "" {
			t.Errorf("%s: the phase's children inherit %q", what, got)
		}
		if got := out.result("args"); len(got) != 1 || got[0] != "0" {
			t.Errorf("%s: the phase has %q arguments", what, got)
		}
	}
	out, err := run(hitStub(script, texts))
	var ee *sshx.ExitError
	if !errors.As(err, &ee) || ee.Status != exitScriptMissing || !out.silent() || !missing(out, err) {
		t.Fatalf("a miss: %v, output %q %q", err, out.tail, out.results)
	}
	out, err = run(missStub(script, texts), append(textVars(texts), phaseScriptVar+"="+script.text)...)
	check("stored", out, err)
	if out.result(unstoredResult) != nil {
		t.Errorf("the store failed")
	}
	dir := filepath.Join(home, ".cache", "magefab", "scripts")
	for _, ht := range []*hostText{script, texts[0].text} {
		if b, err := os.ReadFile(filepath.Join(dir, ht.key)); err != nil || string(b) != ht.text {
			t.Errorf("cache file %s: %q, %v; want the text", ht.key, b, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the cache holds %d files, want 2 (none left aside)", len(entries))
	}
	out, err = run(hitStub(script, texts))
	check("a hit", out, err)

	// A text whose cached file is cut short is a miss.
	os.WriteFile(filepath.Join(dir, texts[0].text.key), []byte("echo"), 0o600)
	if out, err := run(hitStub(script, texts)); !missing(out, err) {
		t.Errorf("a cut file: %v, want a miss", err)
	}
	// A host without HOME stores nothing, and says so.
	out = &scriptOutput{host: "here"}
	cmd := sshx.NewLocal("here").Script(context.Background(), missStub(script, texts))
	cmd.Env = append(append([]string{"HOME=", "XDG_CACHE_HOME="}, textVars(texts)...), phaseScriptVar+"="+script.text)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	check("no HOME", out, err)
	if out.result(unstoredResult) == nil {
		t.Errorf("no HOME: the stub did not say it stored nothing")
	}
}
