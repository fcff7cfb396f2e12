package e2e_test

import (
	"os"
	"testing"

	"github.com/magefab/magefab/internal/e2e"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.RemoveMage()
	os.Exit(code)
}
