package sshx

import (
	"bytes"
	"io"
	"sync"
)

// Console serialises the live output of many hosts onto one writer, a line
// at a time, each line prefixed with its host, so that lines of different
// hosts never interleave mid-line. It is safe for concurrent use.
type Console struct {
	mu sync.Mutex
	w  io.Writer
	// width pads prefixes so that columns line up.
	width int
}

// NewConsole returns a console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Align pads every prefix to the longest of names.
func (c *Console) Align(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		c.width = max(c.width, len(n))
	}
}

// Writer returns a writer whose complete lines go to the console prefixed
// with "name | ". Close writes an unfinished last line.
func (c *Console) Writer(name string) *LineWriter {
	return &LineWriter{c: c, name: name}
}

// Println writes one line prefixed with name.
func (c *Console) Println(name, line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLine(name, []byte(line))
}

func (c *Console) writeLine(name string, line []byte) {
	var b bytes.Buffer
	b.WriteString(name)
	for i := len(name); i < c.width; i++ {
		b.WriteByte(' ')
	}
	b.WriteString(" | ")
	b.Write(bytes.TrimRight(line, "\r"))
	b.WriteByte('\n')
	c.w.Write(b.Bytes())
}

// LineWriter is the writer Console.Writer returns.
type LineWriter struct {
	c    *Console
	name string
	mu   sync.Mutex
	buf  []byte
}

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.c.mu.Lock()
		w.c.writeLine(w.name, w.buf[:i])
		w.c.mu.Unlock()
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Close writes what is left of an unfinished line.
func (w *LineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.c.mu.Lock()
		w.c.writeLine(w.name, w.buf)
		w.c.mu.Unlock()
		w.buf = nil
	}
	return nil
}
