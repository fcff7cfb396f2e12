// Package pypkg handles private Python packages: packages that are not on
// PyPI and are installed into a virtualenv from an archive fetched by the
// deploying machine (buedafab's "private packages").
//
// # Requirement files
//
// A private requirements file names one package per line; blank lines and
// comments (from a '#' at the start of a line or after whitespace) are
// ignored:
//
//	# an archive in S3, optionally pinned by its SHA-256
//	geo-utils==1.4.2 sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	# a git repository at a tag, branch or commit
//	billing==git@github.com:acme/billing.git==v2.0.1
//
// buedafab's lines read as buedafab read them:
//
//	# the archive geo-utils.tar.gz in the bucket (S3Config.KeyTemplate
//	# without a version)
//	geo-utils
//	# a git repository at its HEAD
//	billing==git@github.com:acme/billing.git
//
// The second field of a name==x line is a git URL when it holds '/', ':'
// or '@', or ends in ".git" (a version never does), and a version
// otherwise.
//
// Parse and ParseFile check every field strictly: a bad line is an *Error
// naming the file, the line and the package, and saying what a line
// should look like.
//
// # Fetching
//
// A Fetcher turns a Package into a local archive that pip can install,
// kept in its CacheDir:
//
//   - name==version, and a bare name, is the S3 object rendered from
//     S3Config.KeyTemplate (for a bare name, a template without the
//     version, such as the default <name>.tar.gz),
//     read with the AWS SDK's standard credential chain. With a sha256 the
//     download is verified (a mismatch keeps nothing), and a cached copy
//     that matches is used without asking S3. Without one, the object's
//     ETag and size are stored beside the copy and the next fetch is a
//     conditional GET: S3 answers "not modified" and sends nothing when
//     the object did not change.
//   - name==git-url==ref, and name==git-url at HEAD, is cloned
//     (submodules included, recursively) and
//     packed into <name>-<ref>.tar.gz whose top directory is <name>/: the
//     files git tracks in the repository and its submodules, without .git.
//     A ref that is a full commit id whose archive is cached is not
//     fetched again; a branch or tag is fetched every time.
//
// # Installing
//
// Install sends the archives to a host in one session, as one tar stream
// unpacked into a temporary directory beside the virtualenv, pip-installs
// them all with one command and removes them. RunInstallScripts runs the
// repository's install scripts with the virtualenv as first argument.
//
// Every value that reaches a shell goes through sshx.Quote.
package pypkg
