package sshx

import "io"

// copyBufferSize is the buffer each of a session's output streams is
// copied through. x/crypto/ssh copies a session's stdout and stderr with
// io.Copy, which takes 32 KiB per stream unless the writer reads for
// itself (io.ReaderFrom): at hundreds of hosts, with a session each, that
// was most of the deploying process's memory per host. A channel hands
// over at most one packet per read, and a command's output comes in
// lines, so a smaller buffer costs a few more reads and nothing else.
const copyBufferSize = 4 << 10

// smallCopy is a writer that reads for itself, through a buffer of
// copyBufferSize.
type smallCopy struct{ w io.Writer }

func (s smallCopy) Write(p []byte) (int, error) { return s.w.Write(p) }

// ReadFrom copies r to the writer. The writer goes in bare, so that
// io.CopyBuffer uses the buffer instead of coming back here.
func (s smallCopy) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{s.w}, r, make([]byte, copyBufferSize))
}
