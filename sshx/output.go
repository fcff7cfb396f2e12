package sshx

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
)

// SyncWriter makes a writer safe for concurrent use: each Write, and
// Close, runs alone under one mutex, so that what several goroutines write
// (a command's Stdout and Stderr, say) reaches the writer whole, one Write
// at a time. The zero value writes into a buffer of its own, which String
// returns; NewSyncWriter wraps another writer.
type SyncWriter struct {
	mu  sync.Mutex
	w   io.Writer    // nil: buf
	buf bytes.Buffer // what the zero value holds
}

// NewSyncWriter returns a SyncWriter writing to w.
func NewSyncWriter(w io.Writer) *SyncWriter { return &SyncWriter{w: w} }

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return s.buf.Write(p)
	}
	return s.w.Write(p)
}

// Close closes the writer NewSyncWriter was given, if it is an io.Closer,
// once no Write is in progress. Otherwise it does nothing.
func (s *SyncWriter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// String returns what the zero value has been given so far. A SyncWriter
// made by NewSyncWriter keeps nothing: its String is empty.
func (s *SyncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// bytes returns a copy of what the zero value has been given so far.
func (s *SyncWriter) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.buf.Bytes()...)
}

// Console serialises the live output of many hosts onto one writer, a line
// at a time, each line prefixed with its host, so that lines of different
// hosts never interleave mid-line. It is safe for concurrent use.
//
// Its lines are of two kinds: those of Println, which are always written
// (the run's own, warnings), and those of Progress, which say what a host
// does and which a quiet console drops, while a live summary shows where
// each host is instead (see SetQuiet).
type Console struct {
	out   SyncWriter   // each line is one Write
	width atomic.Int64 // prefixes are padded to it, so that columns line up
	quiet atomic.Bool  // Progress lines are dropped
}

// NewConsole returns a console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{out: SyncWriter{w: w}} }

// Align pads every prefix to the longest of names.
func (c *Console) Align(names ...string) {
	for _, n := range names {
		for w := c.width.Load(); int64(len(n)) > w; w = c.width.Load() {
			if c.width.CompareAndSwap(w, int64(len(n))) {
				break
			}
		}
	}
}

// Println writes one line prefixed with name.
func (c *Console) Println(name, line string) {
	c.writeLine(name, []byte(line))
}

// Progress writes one line of what the host name does, prefixed with
// name, unless the console is quiet.
func (c *Console) Progress(name, line string) {
	if !c.quiet.Load() {
		c.writeLine(name, []byte(line))
	}
}

// SetQuiet makes the console drop the lines given to Progress (on), or
// write them again (off). Println lines are written either way.
func (c *Console) SetQuiet(on bool) { c.quiet.Store(on) }

// Quiet reports whether the console drops the lines given to Progress.
func (c *Console) Quiet() bool { return c.quiet.Load() }

func (c *Console) writeLine(name string, line []byte) {
	var b bytes.Buffer
	b.WriteString(name)
	for i := int64(len(name)); i < c.width.Load(); i++ {
		b.WriteByte(' ')
	}
	b.WriteString(" | ")
	b.Write(bytes.TrimRight(line, "\r"))
	b.WriteByte('\n')
	c.out.Write(b.Bytes())
}

// Writer returns a writer whose complete lines go to the console prefixed
// with "name | ", for a command's Stdout or Stderr. Close writes an
// unfinished last line. The writer is safe for concurrent use.
func (c *Console) Writer(name string) io.WriteCloser {
	return NewSyncWriter(&lineSplitter{c: c, name: name})
}

// lineSplitter hands the complete lines written to it to its console. It
// is not safe for concurrent use: Console.Writer wraps it in a SyncWriter.
type lineSplitter struct {
	c    *Console
	name string
	buf  []byte // an unfinished line
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.c.writeLine(l.name, l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Close writes what is left of an unfinished line.
func (l *lineSplitter) Close() error {
	if len(l.buf) > 0 {
		l.c.writeLine(l.name, l.buf)
		l.buf = nil
	}
	return nil
}
