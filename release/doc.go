// Package release is the deploy domain of magefab: release versions and
// tags, validation of user-supplied values, and the local git operations a
// deploy needs (see Git).
//
// Every value that comes from a user (a tag, a commit, a unit name, a file
// name) is checked by one of the Validate functions before it reaches git,
// a host or a shell; a rejected value is reported as an *InputError.
package release
