package sshx

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"web1", Spec{Host: "web1"}},
		{"web1:2222", Spec{Host: "web1", Port: 2222}},
		{"deploy@web1", Spec{User: "deploy", Host: "web1"}},
		{"deploy@10.0.0.1:22", Spec{User: "deploy", Host: "10.0.0.1", Port: 22}},
		{"[::1]:2222", Spec{Host: "::1", Port: 2222}},
		{"deploy@[fe80::1]", Spec{User: "deploy", Host: "fe80::1"}},
		{"::1", Spec{Host: "::1"}},
		{"ec2-1-2-3-4.compute.amazonaws.com", Spec{Host: "ec2-1-2-3-4.compute.amazonaws.com"}},
	} {
		got, err := ParseSpec(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", " ", "web1:", "web1:0", "web1:99999", "web1:x", "@web1", "-oProxyCommand=x", "a b",
		"web1;id", "$(id)", "web\n1", "[::1", "[::1]x", "deploy@", "\xff", "-web1", "web1/x"} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) = nil error, want an error", bad)
		} else if !strings.Contains(err.Error(), "want host") {
			t.Errorf("ParseSpec(%q) error %q does not say what is wanted", bad, err)
		}
	}
}

func TestSpecString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"web1", "deploy@web1:2222", "[::1]:22", "deploy@[fe80::1]"} {
		sp, err := ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := sp.String(); got != s {
			t.Errorf("ParseSpec(%q).String() = %q", s, got)
		}
	}
}

func TestResolveWithClientConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USER", "alice")
	cfgPath := filepath.Join(home, "ssh_config")
	os.WriteFile(cfgPath, []byte(`
Host web1
  HostName 127.0.0.2
  Port 2201
  User deploy
  IdentityFile ~/keys/web1
  UserKnownHostsFile ~/kh
  StrictHostKeyChecking accept-new
  IdentitiesOnly yes

Host bastioned
  HostName 10.1.2.3
  ProxyJump jump1,deploy@jump2:2222

Host old
  StrictHostKeyChecking no
  ServerAliveInterval 5
  ServerAliveCountMax 2

Host nokeepalive
  ServerAliveInterval 0

Host *.example.com
  User ops
`), 0o600)
	var cfg Config
	cfg.ConfigFile = cfgPath
	cfg.setDefaults()
	file, err := loadClientConfig(cfg.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec string
		want Endpoint
	}{
		{"web1", Endpoint{Name: "web1", Alias: "web1", HostName: "127.0.0.2", Port: 2201, User: "deploy",
			IdentityFiles: []string{home + "/keys/web1"}, IdentitiesOnly: true, KnownHosts: []string{home + "/kh"}, Strict: StrictAcceptNew, KeepAlive: 15 * time.Second, KeepAliveMax: 3}},
		{"root@web1:22", Endpoint{Name: "root@web1:22", Alias: "web1", HostName: "127.0.0.2", Port: 22, User: "root",
			IdentityFiles: []string{home + "/keys/web1"}, IdentitiesOnly: true, KnownHosts: []string{home + "/kh"}, Strict: StrictAcceptNew, KeepAlive: 15 * time.Second, KeepAliveMax: 3}},
		{"bastioned", Endpoint{Name: "bastioned", Alias: "bastioned", HostName: "10.1.2.3", Port: 22, User: "alice",
			KnownHosts: []string{home + "/.ssh/known_hosts"}, Strict: StrictYes, ProxyJump: []string{"jump1", "deploy@jump2:2222"}, KeepAlive: 15 * time.Second, KeepAliveMax: 3}},
		{"old", Endpoint{Name: "old", Alias: "old", HostName: "old", Port: 22, User: "alice",
			KnownHosts: []string{home + "/.ssh/known_hosts"}, Strict: StrictAcceptNew, KeepAlive: 5 * time.Second, KeepAliveMax: 2}},
		{"nokeepalive", Endpoint{Name: "nokeepalive", Alias: "nokeepalive", HostName: "nokeepalive", Port: 22, User: "alice",
			KnownHosts: []string{home + "/.ssh/known_hosts"}, Strict: StrictYes, KeepAlive: -1, KeepAliveMax: 3}},
		{"a.example.com", Endpoint{Name: "a.example.com", Alias: "a.example.com", HostName: "a.example.com", Port: 22, User: "ops",
			KnownHosts: []string{home + "/.ssh/known_hosts"}, Strict: StrictYes, KeepAlive: 15 * time.Second, KeepAliveMax: 3}},
	} {
		got, err := resolve(c.spec, &cfg, file)
		if err != nil {
			t.Errorf("resolve(%q): %v", c.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("resolve(%q) =\n  %+v\nwant\n  %+v", c.spec, got, c.want)
		}
	}
}

func TestNewPoolRejectsWeakChecking(t *testing.T) {
	t.Parallel()
	_, err := NewPool(Config{ConfigFile: "none", StrictHostKeyChecking: "no"})
	if err == nil || !strings.Contains(err.Error(), "accept-new") {
		t.Fatalf("NewPool(StrictHostKeyChecking=no) = %v, want an error naming the allowed values", err)
	}
}

// TestResolveRejectsBadKeepAlive: a ServerAliveInterval or
// ServerAliveCountMax that is no number of the right range is an error
// naming the host, the setting and the file.
func TestResolveRejectsBadKeepAlive(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ setting, want string }{
		{"ServerAliveInterval 5s", `ServerAliveInterval "5s"`},
		{"ServerAliveInterval -1", `ServerAliveInterval "-1"`},
		{"ServerAliveCountMax 0", `ServerAliveCountMax "0"`},
		{"ServerAliveCountMax many", `ServerAliveCountMax "many"`},
	} {
		cfg, file := clientConfigOf(t, "Host web1\n  "+c.setting+"\n")
		path := cfg.ConfigFile
		_, err := resolve("web1", cfg, file)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "web1") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: resolve = %v, want an error naming web1, %s and the file", c.setting, err, c.want)
		}
	}
}

// BenchmarkResolve resolves one host of a client config file that names
// each of a fleet's hosts in a Host block of its own, as a generated one
// does: a Pool resolves every host of a run once.
func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{128, 1000} {
		b.Run(fmt.Sprintf("blocks=%d", n), func(b *testing.B) {
			var cfgText strings.Builder
			for i := range n {
				fmt.Fprintf(&cfgText, "Host web%d\n  HostName 10.0.%d.%d\n  Port 22\n  User deploy\n  IdentityFile ~/.ssh/fleet\n  IdentitiesOnly yes\n  UserKnownHostsFile ~/.ssh/fleet_known_hosts\n  StrictHostKeyChecking yes\n\n", i+1, i/250, i%250+1)
			}
			cfg, file := clientConfigOf(b, cfgText.String())
			spec := fmt.Sprintf("web%d", n/2)
			for b.Loop() {
				if _, err := resolve(spec, cfg, file); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestForHostReadsAsTheWholeFile: the file narrowed to a host's blocks
// answers every setting as the whole file does, with wildcards, negated
// patterns, several blocks setting one key (the first wins) and Include.
func TestForHostReadsAsTheWholeFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	if err := os.WriteFile(filepath.Join(dir, "more"), []byte("Host web*\n  ServerAliveInterval 7\n  IdentityFile ~/included\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(path, []byte(`Host web1
  HostName 10.0.0.1
  IdentityFile ~/one

Host * !web2
  User ops
  IdentityFile ~/star

Include `+filepath.Join(dir, "more")+`

Host web2 web3
  Port 2222
  User deploy
`), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := loadClientConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{"web1", "web2", "web3", "db1"} {
		narrow := file.forHost(alias)
		for _, key := range []string{"HostName", "Port", "User", "ServerAliveInterval", "ProxyJump"} {
			if got, want := narrow.get(alias, key), file.get(alias, key); got != want {
				t.Errorf("%s %s: narrowed %q, whole file %q", alias, key, got, want)
			}
		}
		if got, want := narrow.getAll(alias, "IdentityFile"), file.getAll(alias, "IdentityFile"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s IdentityFile: narrowed %q, whole file %q", alias, got, want)
		}
	}
	if got := file.forHost("web2").get("web2", "User"); got != "deploy" {
		t.Errorf("web2's User = %q, want deploy (the block for every host but web2 skipped)", got)
	}
	if got := file.forHost("web3").getAll("web3", "IdentityFile"); len(got) != 2 {
		t.Errorf("web3's IdentityFile = %q, want ~/star and the included ~/included", got)
	}
}

// clientConfigOf writes text as a client config file and returns a Config
// naming it, with its defaults, and the file as resolve reads it.
func clientConfigOf(t testing.TB, text string) (*Config, *clientConfigFile) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{ConfigFile: path}
	cfg.setDefaults()
	file, err := loadClientConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, file
}
