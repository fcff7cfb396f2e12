package magetargets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// prompter asks the user questions on a terminal. Every question can also
// be answered by an environment variable, so that deploys run without a
// terminal (CI, scripts); a question that neither can answer is an error
// naming the variables to set.
type prompter struct {
	In         io.Reader   // where answers are read
	Out        io.Writer   // where questions are written
	IsTerminal func() bool // whether a user is at In

	mu sync.Mutex    // guards r
	r  *bufio.Reader // reads In; shared so no buffered answer is lost
}

// prompts is the prompter the targets use: stdin, stdout, and whether
// stdin is a terminal. Tests replace it.
var prompts = &prompter{
	In:         os.Stdin,
	Out:        os.Stdout,
	IsTerminal: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
}

// maxAttempts bounds how often a question is asked again after an answer
// that is not one.
const maxAttempts = 3

// confirm asks a yes/no question; the default answer is no. It answers yes
// without asking when the variable yesVar (if any) is set to anything, or
// when MAGEFAB_YES is set.
func (p *prompter) confirm(ctx context.Context, question, yesVar string) (bool, error) {
	if yesVar != "" && os.Getenv(yesVar) != "" {
		fmt.Fprintf(p.Out, "%s yes (%s is set)\n", question, yesVar)
		return true, nil
	}
	yes, err := Yes()
	if err != nil {
		return false, err
	}
	if yes {
		fmt.Fprintf(p.Out, "%s yes (%s)\n", question, YesVar)
		return true, nil
	}
	if !p.IsTerminal() {
		var ways []string
		if yesVar != "" {
			ways = append(ways, yesVar)
		}
		return false, notTerminal(question, append(ways, YesVar+"=1"))
	}
	for range maxAttempts {
		fmt.Fprintf(p.Out, "%s [y/N] ", question)
		answer, err := p.readLine(ctx)
		if err != nil {
			return false, fmt.Errorf("magetargets: no answer to %q: %w", question, err)
		}
		switch strings.ToLower(answer) {
		case "y", "yes":
			return true, nil
		case "", "n", "no":
			return false, nil
		}
		fmt.Fprintln(p.Out, "Please answer y or n.")
	}
	return false, fmt.Errorf("magetargets: no yes or no to %q after %d attempts", question, maxAttempts)
}

// ask asks for a value, suggesting def. The variable answerVar, when set,
// answers without asking; MAGEFAB_YES accepts def. An empty answer at the
// terminal means def.
func (p *prompter) ask(ctx context.Context, question, def, answerVar string) (string, error) {
	if v := os.Getenv(answerVar); answerVar != "" && v != "" {
		fmt.Fprintf(p.Out, "%s: %s (from %s)\n", question, v, answerVar)
		return v, nil
	}
	if def != "" {
		yes, err := Yes()
		if err != nil {
			return "", err
		}
		if yes {
			fmt.Fprintf(p.Out, "%s: %s (%s: the suggestion)\n", question, def, YesVar)
			return def, nil
		}
	}
	if !p.IsTerminal() {
		var ways []string
		if answerVar != "" {
			ways = append(ways, answerVar+"=<answer>")
		}
		if def != "" {
			ways = append(ways, YesVar+"=1 to accept "+def)
		}
		return "", notTerminal(question, ways)
	}
	if def != "" {
		fmt.Fprintf(p.Out, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(p.Out, "%s: ", question)
	}
	answer, err := p.readLine(ctx)
	if err != nil {
		return "", fmt.Errorf("magetargets: no answer to %q: %w", question, err)
	}
	if answer == "" {
		return def, nil
	}
	return answer, nil
}

// notTerminal is the error for a question nobody can answer: ways are the
// variables that would answer it.
func notTerminal(question string, ways []string) error {
	msg := fmt.Sprintf("magetargets: cannot ask %q: stdin is not a terminal", question)
	if len(ways) > 0 {
		msg += "; set " + strings.Join(ways, " or ")
	}
	return errors.New(msg)
}

// readLine reads one line from In, without its line ending and surrounding
// spaces. It returns early, with ctx's error, when ctx is done.
func (p *prompter) readLine(ctx context.Context) (string, error) {
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.r == nil {
			p.r = bufio.NewReader(p.In)
		}
		line, err := p.r.ReadString('\n')
		if errors.Is(err, io.EOF) && line != "" {
			err = nil
		}
		done <- result{strings.TrimSpace(line), err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, io.EOF) {
			r.err = errors.New("end of input")
		}
		return r.line, r.err
	case <-ctx.Done():
		fmt.Fprintln(p.Out)
		return "", ctx.Err()
	}
}
