package magetargets

import (
	"bytes"
	"errors"
	"testing"

	"github.com/magefab/magefab/release"
)

func TestPrintHostCheck(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	printHostCheck(&b, release.HostCheck{Host: "web2", Checks: []release.Check{
		{Name: "sudo", Status: release.CheckOK, Text: "sudo -n works for deploy"},
		{Name: "crontab", Status: release.CheckFail, Text: "crontab file deploy/crontab is missing from the live release b", Fix: "add it to the repository"},
		{Name: "lock", Status: release.CheckFail, Text: "locked by alice@desk deploying v2", Fix: "wait for it to end; if it died, unlock the host"},
	}}, "production", "mage env:production")
	printHostCheck(&b, release.HostCheck{Host: "web3", Err: errors.New("dial tcp: connection refused")}, "production", "mage env:production")
	want := `web2
  ok    sudo     sudo -n works for deploy
  FAIL  crontab  crontab file deploy/crontab is missing from the live release b
                 fix: add it to the repository (Environments["production"].Crontab)
  FAIL  lock     locked by alice@desk deploying v2
                 fix: wait for it to end; if it died: mage env:production deploy:unlock
web3
  FAIL  dial tcp: connection refused
`
	if b.String() != want {
		t.Errorf("printHostCheck:\n%s\nwant:\n%s", b.String(), want)
	}
}
