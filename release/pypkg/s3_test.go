package pypkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// fakeS3 is an in-process S3 server that counts the requests it serves.
type fakeS3 struct {
	t        *testing.T
	backend  *s3mem.Backend
	url      string
	requests atomic.Int64
}

// newFakeS3 starts a fake S3 with bucket "pkgs" and points the AWS SDK's
// credential chain at static keys. Tests using it cannot be parallel
// (t.Setenv).
func newFakeS3(t *testing.T) *fakeS3 {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := &fakeS3{t: t, backend: s3mem.New()}
	if err := f.backend.CreateBucket("pkgs"); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(f.backend)
	inner := faker.Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeS3) put(key string, data []byte) {
	f.t.Helper()
	if _, err := f.backend.PutObject("pkgs", key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeS3) fetcher(t *testing.T) *Fetcher {
	return &Fetcher{CacheDir: t.TempDir(), S3: S3Config{Bucket: "pkgs", Region: "us-east-1", Endpoint: f.url}}
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchS3(t *testing.T) {
	s3 := newFakeS3(t)
	s3.put("geo.tar.gz", []byte("archive v1"))
	f := s3.fetcher(t)
	ctx := context.Background()
	p := Package{Name: "geo", Version: "1.0", File: "private.txt", Line: 1}

	path, err := f.Fetch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); string(got) != "archive v1" || filepath.Base(path) != "geo.tar.gz" {
		t.Fatalf("Fetch = %s holding %q, want geo.tar.gz holding %q", path, got, "archive v1")
	}

	// Unchanged: a conditional GET that transfers nothing.
	before := s3.requests.Load()
	if again, err := f.Fetch(ctx, p); err != nil || again != path {
		t.Fatalf("second Fetch = %s, %v, want %s", again, err, path)
	}
	if n := s3.requests.Load() - before; n != 1 {
		t.Errorf("second Fetch made %d requests, want 1 (conditional GET)", n)
	}

	// Changed: fetched again.
	s3.put("geo.tar.gz", []byte("archive v2"))
	if again, err := f.Fetch(ctx, p); err != nil || string(readFile(t, again)) != "archive v2" {
		t.Fatalf("Fetch after a change = %s, %v, want the new content", again, err)
	}
}

func TestFetchS3KeyTemplate(t *testing.T) {
	s3 := newFakeS3(t)
	s3.put("dist/geo-2.0-py3-none-any.whl", []byte("wheel"))
	f := s3.fetcher(t)
	f.S3.KeyTemplate = "dist/{{.Name}}-{{.Version}}-py3-none-any.whl"
	path, err := f.Fetch(context.Background(), Package{Name: "geo", Version: "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "geo-2.0-py3-none-any.whl" {
		t.Errorf("Fetch = %s, want the key's file name", path)
	}
}

func TestFetchS3Checksum(t *testing.T) {
	s3 := newFakeS3(t)
	data := []byte("archive with a checksum")
	s3.put("geo.tar.gz", data)
	f := s3.fetcher(t)
	ctx := context.Background()
	p := Package{Name: "geo", Version: "1.0", SHA256: sha(data), File: "private.txt", Line: 4}

	path, err := f.Fetch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, path), data) {
		t.Fatalf("Fetch wrote %q, want %q", readFile(t, path), data)
	}

	// A cached copy that matches is used without asking S3.
	before := s3.requests.Load()
	if again, err := f.Fetch(ctx, p); err != nil || again != path {
		t.Fatalf("cached Fetch = %s, %v, want %s", again, err, path)
	}
	if n := s3.requests.Load() - before; n != 0 {
		t.Errorf("cached Fetch made %d requests, want none", n)
	}

	// A damaged cached copy is fetched again.
	if err := os.WriteFile(path, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := f.Fetch(ctx, p); err != nil || !bytes.Equal(readFile(t, again), data) {
		t.Fatalf("Fetch over a damaged copy = %v, want the object again", err)
	}
	if n := s3.requests.Load() - before; n != 1 {
		t.Errorf("Fetch over a damaged copy made %d requests, want 1", n)
	}
}

func TestFetchS3ChecksumMismatch(t *testing.T) {
	s3 := newFakeS3(t)
	s3.put("geo.tar.gz", []byte("tampered"))
	f := s3.fetcher(t)
	want := sha([]byte("the real archive"))
	_, err := f.Fetch(context.Background(), Package{Name: "geo", Version: "1.0", SHA256: want, File: "private.txt", Line: 7})
	var pe *Error
	if !errors.As(err, &pe) || pe.Package != "geo" || pe.Line != 7 {
		t.Fatalf("Fetch error = %v, want an *Error for geo at line 7", err)
	}
	for _, s := range []string{"private.txt:7: package geo:", "s3://pkgs/geo.tar.gz has sha256 " + sha([]byte("tampered")), "want " + want} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	left, _ := filepath.Glob(filepath.Join(f.CacheDir, "s3", "*", "*"))
	if len(left) != 0 {
		t.Errorf("a bad download left %v in the cache", left)
	}
}

func TestFetchS3Missing(t *testing.T) {
	s3 := newFakeS3(t)
	f := s3.fetcher(t)
	f.S3.KeyTemplate = "pkgs/{{.Name}}-{{.Version}}.tar.gz"
	_, err := f.Fetch(context.Background(), Package{Name: "nothere", Version: "3.1", File: "private.txt", Line: 2})
	if err == nil {
		t.Fatal("Fetch of a missing object succeeded")
	}
	want := "pypkg: private.txt:2: package nothere: s3://pkgs/pkgs/nothere-3.1.tar.gz: no such object"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error =\n\t%v\nwant it to start with\n\t%s", err, want)
	}

	f.S3.Bucket = "nobucket"
	_, err = f.Fetch(context.Background(), Package{Name: "nothere", Version: "3.1"})
	if err == nil || !strings.Contains(err.Error(), "s3://nobucket/pkgs/nothere-3.1.tar.gz: no such bucket") {
		t.Errorf("error = %v, want one saying the bucket does not exist", err)
	}
}

func TestFetchS3NoBucket(t *testing.T) {
	t.Parallel()
	f := &Fetcher{CacheDir: t.TempDir()}
	_, err := f.Fetch(context.Background(), Package{Name: "geo", Version: "1", File: "p.txt", Line: 3})
	if err == nil || !strings.Contains(err.Error(), "p.txt:3: package geo: S3.Bucket is not set") {
		t.Errorf("error = %v, want one saying S3.Bucket is not set", err)
	}
}

func TestFetchAll(t *testing.T) {
	s3 := newFakeS3(t)
	s3.put("a.tar.gz", []byte("a"))
	s3.put("c.tar.gz", []byte("c"))
	f := s3.fetcher(t)
	pkgs, err := Parse(strings.NewReader("a==1\nb==2\nc==3\nd==4\n"), "private.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.FetchAll(context.Background(), pkgs); err == nil ||
		!strings.Contains(err.Error(), "private.txt:2: package b:") || !strings.Contains(err.Error(), "private.txt:4: package d:") {
		t.Errorf("FetchAll error = %v, want one naming b and d", err)
	}
	paths, err := f.FetchAll(context.Background(), []Package{pkgs[2], pkgs[0]})
	if err != nil || len(paths) != 2 || string(readFile(t, paths[0])) != "c" || string(readFile(t, paths[1])) != "a" {
		t.Errorf("FetchAll = %v, %v, want the archives of c and a in order", paths, err)
	}
}
