package sshx_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh/agent"
)

// A Pool dials each host once, on its first command, and runs every later
// command as a session on that connection. Here the host is an in-process
// sshtest server, reached through the OpenSSH client config file it writes:
// the host alias, its address, the key to log in with and its known host key.
func ExamplePool() {
	srv := sshtest.NewServer()
	defer srv.Close()
	dir, err := os.MkdirTemp("", "sshx-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files, err := srv.WriteClientFiles(dir)
	if err != nil {
		log.Fatal(err)
	}

	pool, err := sshx.NewPool(sshx.Config{
		ConfigFile: files.ConfigFile,
		Agent:      agent.NewKeyring().(agent.ExtendedAgent), // not the user's agent
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	h, err := pool.Host(files.Alias) // "sshtest"
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	out, err := h.Command(ctx, "echo", "hello from", h.Name()).Output()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	if err := h.Script(ctx, "test -d /").Run(); err != nil {
		log.Fatal(err)
	}
	st := h.Stats()
	fmt.Println(st.Connections, "connection,", st.Sessions, "sessions")
	// Output:
	// hello from sshtest
	// 1 connection, 2 sessions
}

func ExampleQuote() {
	fmt.Println(sshx.Quote("web1"))
	fmt.Println(sshx.Quote("it's $HOME"))
	fmt.Println(sshx.Quote(""))
	fmt.Println(sshx.Join("grep", "-r", "two words", "/srv/my app"))
	// Output:
	// web1
	// 'it'\''s $HOME'
	// ''
	// grep -r 'two words' '/srv/my app'
}
