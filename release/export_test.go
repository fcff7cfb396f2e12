package release

// For the tests of package release_test, which check the limits and
// switch a host directly.
const (
	MaxRefLen     = maxRefLen
	MaxUnitLen    = maxUnitLen
	MaxNameLen    = maxNameLen
	MaxPathLen    = maxPathLen
	MaxRelPathLen = maxRelPathLen
)

var Switch = switchHost
