package sshx

// Wrap is the process-group wrapper put around every remote command, for
// the benchmark that measures what it costs.
var Wrap = wrap
