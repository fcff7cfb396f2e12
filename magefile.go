//go:build mage

// The repository's own targets: run them with `go tool mage <target>`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/magefab/magefab/internal/demo"
	"github.com/magefile/mage/sh"
)

// Demo deploys the Tornado example app to an embedded SSH host with the real targets: deploy, new release, status, rollback, maintenance mode.
func Demo(ctx context.Context) error {
	return demo.Run(ctx, os.Stdout)
}

// Test runs every test with the race detector; fleet tests run when
// MAGEFAB_FLEET names a fleet's ssh_config (see .ci/fleet).
func Test() error {
	return sh.RunV("go", "test", "-race", "-count=1", "-timeout", "30m", "./...")
}

// Lint checks formatting (gofmt), go vet and staticcheck.
func Lint() error {
	out, err := exec.Command("gofmt", "-l", ".").Output()
	if err != nil {
		return fmt.Errorf("gofmt: %w", err)
	}
	if files := strings.TrimSpace(string(out)); files != "" {
		return fmt.Errorf("gofmt -l lists files that need formatting (run gofmt -w):\n%s", files)
	}
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return err
	}
	return sh.RunV("go", "tool", "staticcheck", "./...")
}

// Fleet starts the local fleet of OpenSSH test hosts (needs root); N comes
// from MAGEFAB_FLEET_SIZE, 3 if unset.
func Fleet() error {
	n := os.Getenv("MAGEFAB_FLEET_SIZE")
	if n == "" {
		n = "3"
	}
	return sh.RunV("bash", ".ci/fleet", "up", n)
}

// Bench runs the deploy benchmark against Capistrano and Fabric on a local
// fleet (needs root); BENCH_FLAGS passes flags, such as -smoke for a quick
// check or -hosts 1,4,16 -runs 5 (see bench/main.go).
func Bench() error {
	return sh.RunV("go", append([]string{"run", "./bench"}, strings.Fields(os.Getenv("BENCH_FLAGS"))...)...)
}
