package pypkg

import (
	"testing"

	"github.com/magefab/magefab/internal/shlint"
)

// Every host script is valid sh for dash (Debian's /bin/sh), passes
// shellcheck as POSIX sh, and opens with a header that names its inputs.
func TestHostScriptsLint(t *testing.T) {
	t.Parallel()
	shlint.Lint(t, hostFS, "hostsh/*.sh", func(_ string, text []byte) string { return string(text) })
}
