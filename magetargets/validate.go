package magetargets

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/elb"
	"github.com/magefab/magefab/sshx"
)

// fieldError is one problem in the configuration, naming the field.
type fieldError struct {
	field string // e.g. "Unit", "Environments[\"staging\"].Hosts[1]"
	err   error
}

func (e *fieldError) Error() string {
	var ie *release.InputError
	if errors.As(e.err, &ie) {
		return fmt.Sprintf("Config.%s %s: %s", e.field, shown(ie.Value), ie.Reason)
	}
	return "Config." + e.field + ": " + e.err.Error()
}

func (e *fieldError) Unwrap() error { return e.err }

// problems collects the fieldErrors of a validation.
type problems []error

func (p *problems) add(field string, err error) {
	if err != nil {
		*p = append(*p, &fieldError{field: field, err: err})
	}
}

func (p *problems) addf(field, format string, args ...any) {
	p.add(field, fmt.Errorf(format, args...))
}

// addValue adds err as p.add does, but words a *release.InputError as
// "Config.<field>: <value> <reason>", the way addf's messages are worded.
func (p *problems) addValue(field string, err error) {
	var ie *release.InputError
	if errors.As(err, &ie) {
		p.addf(field, "%s %s", shown(ie.Value), ie.Reason)
		return
	}
	p.add(field, err)
}

var (
	accountRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	commandRE    = regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	pathSuffixRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// validate checks the configuration as the targets need it; forDeploy adds
// the fields only deploys need (SCM). It returns every problem at once, one
// line each, each naming its field.
func (c Config) validate(forDeploy bool) error {
	var p problems
	if c.Unit == "" {
		p.addf("Unit", "is required: set it to the app's short name, e.g. Unit: \"five\"")
	} else {
		p.add("Unit", release.ValidateUnit(c.Unit))
	}
	c.validateRepo(&p, forDeploy)
	c.validateLayout(&p)
	c.validateHostSide(&p)
	c.AWS.validate(&p)
	if len(c.Environments) == 0 {
		p.addf("Environments", "is empty; call magetargets.Configure, which adds the built-in environments")
	}
	for _, name := range c.envNames() {
		c.Environments[name].validate(&p, name, c.Path)
	}
	if c.DefaultEnvironment != "" {
		if _, ok := c.Environments[c.DefaultEnvironment]; !ok {
			p.addf("DefaultEnvironment", "%s is not an environment; use one of %s", shown(c.DefaultEnvironment), strings.Join(c.envNames(), ", "))
		}
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("magetargets: the configuration given to magetargets.Configure has %d problem(s):\n%w", len(p), errors.Join(p...))
}

// validateRepo checks the fields about the git repository.
func (c Config) validateRepo(p *problems, forDeploy bool) {
	switch {
	case c.SCM == "" && forDeploy:
		p.addf("SCM", "is required for deploys: set it to the git URL the servers clone, e.g. git@github.com:you/app.git")
	case c.SCM != "":
		if reason := badSCM(c.SCM); reason != "" {
			p.addf("SCM", "%s %s; give the git URL the servers clone, e.g. git@github.com:you/app.git", shown(c.SCM), reason)
		}
	}
	if c.SCMWebURL != "" {
		u, err := url.Parse(c.SCMWebURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.addf("SCMWebURL", "%s is not an http(s) URL; give the repository's web page, e.g. https://github.com/you/app, or leave it empty", shown(c.SCMWebURL))
		}
	}
	if err := release.ValidateRevision(c.Remote); err != nil || strings.Contains(c.Remote, "/") {
		p.addf("Remote", "%s is not a git remote name; give the local remote that mirrors SCM, e.g. origin", shown(c.Remote))
	}
	if _, err := release.CompileVersionPattern(c.VersionPattern); err != nil {
		p.add("VersionPattern", err)
	}
	for i, f := range c.PipRequirements {
		p.add(fmt.Sprintf("PipRequirements[%d]", i), release.ValidateRelPath("file", f))
	}
	for i, f := range c.PipRequirementsDev {
		p.add(fmt.Sprintf("PipRequirementsDev[%d]", i), release.ValidateRelPath("file", f))
	}
	for i, f := range c.PipRequirementsProduction {
		p.add(fmt.Sprintf("PipRequirementsProduction[%d]", i), release.ValidateRelPath("file", f))
	}
	p.add("Settings", release.ValidateRelPath("file", c.Settings))
	for i, f := range c.Fixtures {
		p.add(fmt.Sprintf("Fixtures[%d]", i), release.ValidateRelPath("fixture", f))
	}
	if c.Celeryd != "" {
		p.add("Celeryd", release.ValidateRelPath("file", c.Celeryd))
	}
	for i, f := range c.PrivateRequirements {
		p.add(fmt.Sprintf("PrivateRequirements[%d]", i), release.ValidateRelPath("file", f))
	}
	for i, f := range c.PackageInstallScripts {
		p.add(fmt.Sprintf("PackageInstallScripts[%d]", i), release.ValidateRelPath("file", f))
	}
	switch {
	case c.RootDir == "":
	case len(c.RootDir) > maxLocalPathLen:
		p.addf("RootDir", "%s is longer than %d bytes; give the project's directory", shown(c.RootDir), maxLocalPathLen)
	case strings.IndexFunc(c.RootDir, release.IsControl) >= 0 || !utf8.ValidString(c.RootDir):
		p.addf("RootDir", "%s contains a control character or invalid UTF-8; give the project's directory", shown(c.RootDir))
	case strings.ContainsAny(c.RootDir, release.ShellSpecialInQuotes):
		i := strings.IndexAny(c.RootDir, release.ShellSpecialInQuotes)
		p.addf("RootDir", "%s contains %q; move the project to a directory without '$', '`', '\"' or '\\' in its path", shown(c.RootDir), c.RootDir[i])
	}
}

// validateLayout checks the fields that name directories on the hosts.
func (c Config) validateLayout(p *problems) {
	switch {
	case c.Path == "" && c.Unit == "":
		// Path defaults to /var/webapps/<Unit>; the missing Unit is reported.
	case c.Path == "":
		p.addf("Path", "is empty; give the deploy root on the servers, such as /var/webapps/%s", c.Unit)
	default:
		p.addValue("Path", release.ValidateDeployPath(c.Path))
	}
	p.add("ReleasesRoot", release.ValidateName("ReleasesRoot", c.ReleasesRoot))
	p.add("CurrentLink", release.ValidateName("CurrentLink", c.CurrentLink))
	p.add("Virtualenv", release.ValidateName("Virtualenv", c.Virtualenv))
	if len(c.ReleaseDirs) != 2 {
		p.addf("ReleaseDirs", "has %d names, want exactly 2, e.g. []string{\"a\", \"b\"}", len(c.ReleaseDirs))
	}
	for i, d := range c.ReleaseDirs {
		field := fmt.Sprintf("ReleaseDirs[%d]", i)
		p.add(field, release.ValidateName(field, d))
	}
	if len(c.ReleaseDirs) == 2 && c.ReleaseDirs[0] == c.ReleaseDirs[1] {
		p.addf("ReleaseDirs", "names %s twice; the two release directories need different names", shown(c.ReleaseDirs[0]))
	}
	if slices.Contains(c.ReleaseDirs, c.CurrentLink) {
		p.addf("CurrentLink", "%s is also one of ReleaseDirs; the link and the directories live side by side under ReleasesRoot, so give it another name", shown(c.CurrentLink))
	}
}

// validateHostSide checks the fields about accounts and commands on the
// hosts, and how hosts are reached.
func (c Config) validateHostSide(p *problems) {
	if !accountRE.MatchString(c.DeployUser) {
		p.addf("DeployUser", "%s is not a user name; give the account that owns the deployed files, e.g. deploy", shown(c.DeployUser))
	}
	if !accountRE.MatchString(c.DeployGroup) {
		p.addf("DeployGroup", "%s is not a group name; give the group of the deployed files, e.g. deploy", shown(c.DeployGroup))
	}
	if len(c.Python) > maxCommandLen || !commandRE.MatchString(c.Python) || strings.HasPrefix(c.Python, "-") {
		p.addf("Python", "%s is not an interpreter; give a command or path such as python3 or /usr/bin/python3.12", shown(c.Python))
	}
	if strings.TrimSpace(c.PipInstallCommand) == "" || badText(c.PipInstallCommand) != "" {
		p.addf("PipInstallCommand", "%s is not a command line; give e.g. \"pip install\"", shown(c.PipInstallCommand))
	}
	if _, err := c.renderRestart(); err != nil {
		p.addf("RestartCommand", "%s: %v; give a text/template over Config such as %s", shown(c.RestartCommand), err, defaultRestartCommand)
	}
	c.checkSlots(p)
	c.checkRollout(p)
	if c.Parallel < 1 {
		p.addf("Parallel", "is %d; give the number of hosts to work on at once, 1 or more", c.Parallel)
	}
	if c.FetchLimit < 0 {
		p.addf("FetchLimit", "is %d; give how many hosts may download from the git server or the package index at once, 1 or more, or 0 for no limit", c.FetchLimit)
	}
	checkDelivery(p, "Delivery", c.Delivery)
	for _, t := range []struct {
		field string
		d     time.Duration
	}{
		{"Timeouts.Connect", c.Timeouts.Connect},
		{"Timeouts.Prepare", c.Timeouts.Prepare},
		{"Timeouts.Switch", c.Timeouts.Switch},
		{"Timeouts.Verify", c.Timeouts.Verify},
		{"SSH.ConnectTimeout", c.SSH.ConnectTimeout},
	} {
		if t.d < 0 {
			p.addf(t.field, "is negative (%v); give a duration such as 30 * time.Second, or 0 for the default", t.d)
		}
	}
	if c.LockLease < minLockLease {
		p.addf("LockLease", "is %v; give how long a deploy lock stays its holder's without a heartbeat, at least %v, such as 2 * time.Minute, or 0 for the default", c.LockLease, minLockLease)
	}
	if c.SSH.Port < 1 || c.SSH.Port > 65535 {
		p.addf("SSH.Port", "is %d; give a port in 1..65535", c.SSH.Port)
	}
	if s := c.SSH.StrictHostKeyChecking; s != sshx.StrictYes && s != sshx.StrictAcceptNew {
		p.addf("SSH.StrictHostKeyChecking", "is %s; give %q or %q", shown(s), sshx.StrictYes, sshx.StrictAcceptNew)
	}
	if c.SSH.User != "" && !accountRE.MatchString(c.SSH.User) {
		p.addf("SSH.User", "%s is not a user name; give the login user, or leave it empty for the local user", shown(c.SSH.User))
	}
	file := func(field, f string) {
		if f == "" || strings.IndexFunc(f, release.IsControl) >= 0 {
			p.addf(field, "%s is not a file name", shown(f))
		}
	}
	file("SSH.ConfigFile", c.SSH.ConfigFile)
	file("SSH.KnownHostsFile", c.SSH.KnownHostsFile)
	for i, f := range c.SSH.IdentityFiles {
		file(fmt.Sprintf("SSH.IdentityFiles[%d]", i), f)
	}
}

// validate checks the environment named name, reporting into p; root is
// Config.Path, which its PathSuffix extends.
// checkDelivery checks a Delivery field: empty, pull or push.
func checkDelivery(p *problems, field, v string) {
	if v != "" && v != DeliverPull && v != DeliverPush {
		p.addf(field, "%s is not a delivery; give magetargets.DeliverPull (%q: the hosts fetch from SCM) or magetargets.DeliverPush (%q: this machine sends them the release over SSH), or leave it empty", shown(v), DeliverPull, DeliverPush)
	}
}

func (e Environment) validate(p *problems, name, root string) {
	field := "Environments[" + shown(name) + "]"
	checkDelivery(p, field+".Delivery", e.Delivery)
	if !envNameRE.MatchString(name) {
		p.addf(field, "%s is not an environment name; use up to 64 letters, digits, '_' and '-', e.g. qa", shown(name))
	}
	if strings.IndexFunc(e.Name, release.IsControl) >= 0 {
		p.addf(field+".Name", "%s contains a control character; give a name to show in output and notifications", shown(e.Name))
	}
	if !envNameRE.MatchString(e.DeploymentType) {
		p.addf(field+".DeploymentType", "%s is not a deployment type; use up to 64 letters, digits, '_' and '-', e.g. QA", shown(e.DeploymentType))
	}
	seen := map[string]bool{}
	for i, h := range e.Hosts {
		hf := fmt.Sprintf("%s.Hosts[%d]", field, i)
		if err := checkHost(h); err != nil {
			p.add(hf, err)
		} else if seen[h] {
			p.addf(hf, "%s is listed twice; list each host once", shown(h))
		}
		seen[h] = true
	}
	if e.LoadBalancer != "" && elb.ValidateName(e.LoadBalancer) != nil {
		p.addf(field+".LoadBalancer", "%s is not a Classic Load Balancer name; use 1 to 32 letters, digits and '-', not starting or ending with '-'", shown(e.LoadBalancer))
	}
	if e.TargetGroup != "" && elb.ValidateTargetGroup(e.TargetGroup) != nil {
		p.addf(field+".TargetGroup", "%s is not a target group; give its name (1 to 32 letters, digits and '-', not starting or ending with '-') or its ARN (arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>)", shown(e.TargetGroup))
	}
	if e.LoadBalancer != "" && e.TargetGroup != "" {
		p.addf(field+".TargetGroup", "%s is set, and so is LoadBalancer %s: the hosts and a rollout go through one load balancer; keep the one in front of the hosts and empty the other", shown(e.TargetGroup), shown(e.LoadBalancer))
	}
	if e.Branch != "" {
		if err := release.ValidateRevision(e.Branch); err != nil {
			p.add(field+".Branch", err)
		}
	}
	if e.DefaultRevision != "" {
		p.add(field+".DefaultRevision", release.ValidateRevision(e.DefaultRevision))
	}
	switch {
	case e.PathSuffix == "":
	case !pathSuffixRE.MatchString(e.PathSuffix) || strings.Contains(e.PathSuffix, ".."):
		p.addf(field+".PathSuffix", "%s is not a suffix for Path; use letters, digits, '-', '_' or '.', e.g. -staging", shown(e.PathSuffix))
	case release.ValidateDeployPath(root) == nil:
		// A bad Path is reported on its own. With the suffix, it is this
		// environment's deploy root, which must pass the same rule.
		var ie *release.InputError
		if errors.As(release.ValidateDeployPath(root+e.PathSuffix), &ie) {
			p.addf(field+".PathSuffix", "%s makes Path %s, which %s", shown(e.PathSuffix), shown(ie.Value), ie.Reason)
		}
	}
	for i, f := range e.Requirements {
		p.add(fmt.Sprintf("%s.Requirements[%d]", field, i), release.ValidateRelPath("file", f))
	}
	if e.Crontab != "" {
		p.add(field+".Crontab", release.ValidateRelPath("file", e.Crontab))
	}
	for i, f := range e.Fixtures {
		p.add(fmt.Sprintf("%s.Fixtures[%d]", field, i), release.ValidateRelPath("fixture", f))
	}
}

// maxLocalPathLen bounds Config.RootDir: the limit of Linux on a path.
const maxLocalPathLen = 4096

// maxCommandLen bounds Config.Python.
const maxCommandLen = 255

// maxSCMLen bounds Config.SCM.
const maxSCMLen = 2048

// badSCM says what is wrong with a git URL for the hosts to clone, or "" if
// nothing is. Besides badText, it refuses characters a shell interprets in
// double quotes, git's ext:: and fd:: transports (which run a command
// rather than fetch) and an SSH user, host or port that starts with '-'
// (which ssh reads as an option).
func badSCM(s string) string {
	if reason := badText(s); reason != "" {
		return reason
	}
	if len(s) > maxSCMLen {
		return fmt.Sprintf("is longer than %d bytes", maxSCMLen)
	}
	if i := strings.IndexAny(s, release.ShellSpecialInQuotes); i >= 0 {
		return fmt.Sprintf("contains %q, which a git URL here must not hold", s[i])
	}
	if transport, _, ok := strings.Cut(s, "::"); ok && !strings.ContainsAny(transport, "/:@") {
		switch strings.ToLower(transport) {
		case "ext", "fd":
			return "uses git's " + transport + ":: transport, which runs a command instead of fetching"
		}
	}
	// The part that names the SSH user, host and port: up to the first
	// '/' after "scheme://", or before the ':' of scp-like user@host:path.
	var host string
	if _, rest, ok := strings.Cut(s, "://"); ok {
		host, _, _ = strings.Cut(rest, "/")
	} else if h, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(h, "/") {
		host = h
	}
	for _, part := range strings.FieldsFunc(host, func(r rune) bool { return r == '@' || r == ':' }) {
		if strings.HasPrefix(part, "-") {
			return fmt.Sprintf("has a user, host or port that starts with '-' (%s), which ssh would read as an option", shown(part))
		}
	}
	return ""
}

// shown quotes a value for an error message with %q, cut to its first 80
// bytes (on a character boundary) when it is longer.
func shown(v string) string {
	const max = 80
	if len(v) <= max {
		return fmt.Sprintf("%q", v)
	}
	cut := max
	for cut > max-utf8.UTFMax && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:cut], len(v))
}

// badText says what is wrong with a one-line setting, or "" if nothing is.
func badText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexFunc(s, release.IsControl) >= 0:
		return "contains a control character (newline, NUL, ...)"
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	}
	return ""
}
