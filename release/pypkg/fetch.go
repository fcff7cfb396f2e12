package pypkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Fetcher fetches private packages into a local cache and returns archives
// pip can install. Set its fields before the first Fetch and do not change
// them afterwards. A Fetcher is safe for concurrent use; fetches of git
// packages run one at a time.
type Fetcher struct {
	// CacheDir holds the archives, the git clones and the records of S3
	// objects. Required; it is created when missing.
	CacheDir string
	// S3 says where the archives of S3 packages (name==version, or a
	// bare name) live; it is needed only for them.
	S3 S3Config
	// Git is the git program; empty means "git" found on PATH.
	Git string
	// Log receives a line for each package fetched or found in the cache;
	// nil prints nothing.
	Log io.Writer

	mu     sync.Mutex // guards client
	client *s3.Client
	gitMu  sync.Mutex // serializes git fetches, which share clones
}

// Fetch returns the path of a local archive of p, fetching it when the
// cache has no valid copy. Its errors are *Error values naming the package
// and where it was listed.
func (f *Fetcher) Fetch(ctx context.Context, p Package) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	p.SHA256 = strings.ToLower(p.SHA256)
	if f.CacheDir == "" {
		return "", errorFor(p, errors.New("Fetcher.CacheDir is not set"))
	}
	var (
		path string
		err  error
	)
	if p.IsGit() {
		path, err = f.fetchGit(ctx, p)
	} else {
		path, err = f.fetchS3(ctx, p)
	}
	if err != nil {
		return "", errorFor(p, err)
	}
	return path, nil
}

// FetchAll fetches every package in order and returns their archives in
// the same order. It goes on past a failed package, so that the error
// (errors.Join of *Error) names every one that failed, but stops when ctx
// is done.
func (f *Fetcher) FetchAll(ctx context.Context, pkgs []Package) ([]string, error) {
	paths := make([]string, 0, len(pkgs))
	var errs []error
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("pypkg: %w", err))
			break
		}
		path, err := f.Fetch(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		paths = append(paths, path)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return paths, nil
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		fmt.Fprintf(f.Log, "pypkg: "+format+"\n", args...)
	}
}

// fileSHA256 returns the SHA-256 of a file in lower-case hex.
func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeTemp copies r into a new temporary file in dir and returns its
// name, the SHA-256 of what was written and its size. On error nothing is
// left behind.
func writeTemp(dir string, r io.Reader) (name, sum string, size int64, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", 0, err
	}
	fh, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", "", 0, err
	}
	defer func() {
		if err != nil {
			fh.Close()
			os.Remove(fh.Name())
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(fh, h), r)
	if err != nil {
		return "", "", 0, err
	}
	if err = fh.Chmod(0o644); err != nil {
		return "", "", 0, err
	}
	if err = fh.Close(); err != nil {
		return "", "", 0, err
	}
	return fh.Name(), hex.EncodeToString(h.Sum(nil)), size, nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, _, _, err := writeTemp(dir, bytesReader(data))
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
