//go:build unix

package sshtest_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh"
)

func Example() {
	srv := sshtest.NewUnstartedServer()
	srv.Env = []string{"GREETING=hello"}
	srv.Start()
	defer srv.Close()

	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("demo"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	session, err := client.NewSession()
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	out, err := session.Output(`echo "$GREETING" | tr a-z A-Z`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	fmt.Println(srv.Users(), len(srv.Commands()))
	// Output:
	// HELLO
	// [demo] 1
}

func ExampleServer_Handler() {
	srv := sshtest.NewUnstartedServer()
	srv.Handler = func(e *sshtest.Exec) {
		if strings.HasPrefix(e.Command, "fail") {
			fmt.Fprintln(e.Stderr, "failing on purpose")
			e.Exit(2)
			return
		}
		fmt.Fprintf(e.Stdout, "%s ran %q\n", e.User, e.Command)
	}
	srv.Start()
	defer srv.Close()

	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("ci"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	for _, cmd := range []string{"deploy --dry-run", "fail now"} {
		session, err := client.NewSession()
		if err != nil {
			log.Fatal(err)
		}
		out, err := session.Output(cmd)
		session.Close()
		fmt.Printf("%q %v\n", out, err)
	}
	// Output:
	// "ci ran \"deploy --dry-run\"\n" <nil>
	// "" Process exited with status 2
}

func ExampleServer_SetFault() {
	srv := sshtest.NewServer()
	defer srv.Close()

	srv.SetFault(sshtest.FaultRejectAuth)
	_, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("demo"))
	fmt.Println(err != nil, srv.Stats().Connections)

	srv.SetFault(sshtest.FaultNone)
	client, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig("demo"))
	if err != nil {
		log.Fatal(err)
	}
	client.Close()
	fmt.Println(srv.Stats().Connections)
	// Output:
	// true 0
	// 1
}
