package pypkg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// DefaultKeyTemplate is the S3 key of a package when S3Config.KeyTemplate
// is empty, as in buedafab. It holds no version: the bucket keeps one
// archive per package.
const DefaultKeyTemplate = "{{.Name}}.tar.gz"

// S3Config says where the archives of S3 packages (name==version, or a
// bare name) live.
// Credentials come from the AWS SDK's standard chain (environment,
// shared files, SSO, instance role).
type S3Config struct {
	// Bucket holds the archives. Required for S3 packages.
	Bucket string
	// Region is the bucket's region; empty means the SDK's (AWS_REGION or
	// the shared config), or us-east-1 when Endpoint is set.
	Region string
	// Endpoint is the URL of an S3-compatible store, addressed path-style
	// (http://host:port/bucket/key); empty means AWS.
	Endpoint string
	// KeyTemplate is a text/template over Package giving an archive's key,
	// e.g. "pkgs/{{.Name}}-{{.Version}}.tar.gz"; empty means
	// DefaultKeyTemplate. The cached copy keeps the key's last element
	// as its file name, so a wheel's key must end in its wheel file name.
	KeyTemplate string
}

// Key renders the S3 key of p. A package without a version (buedafab's
// bare name line) needs a template that does not use the version, such
// as DefaultKeyTemplate.
func (c S3Config) Key(p Package) (string, error) {
	text := c.KeyTemplate
	if text == "" {
		text = DefaultKeyTemplate
	}
	tmpl, err := template.New("S3.KeyTemplate").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("S3.KeyTemplate: %w", err)
	}
	render := func(p Package) (string, error) {
		var b strings.Builder
		if err := tmpl.Execute(&b, p); err != nil {
			return "", fmt.Errorf("S3.KeyTemplate: %w", err)
		}
		return b.String(), nil
	}
	key, err := render(p)
	if err != nil {
		return "", err
	}
	if p.Version == "" && !p.IsGit() {
		// The template must not depend on the version the line lacks.
		probe := p
		probe.Version = "0"
		if other, err := render(probe); err != nil || other != key {
			return "", fmt.Errorf("S3.KeyTemplate %q uses the version, and package %s is listed without one: give it as %s==<version>, or use a template without {{.Version}} such as %s",
				text, p.Name, p.Name, DefaultKeyTemplate)
		}
	}
	base := path.Base(key)
	switch {
	case key == "" || strings.HasSuffix(key, "/") || base == "." || base == "..":
		return "", fmt.Errorf("S3.KeyTemplate %q gives the key %q, which names no file", text, key)
	case strings.HasPrefix(key, "/"):
		return "", fmt.Errorf("S3.KeyTemplate %q gives the key %q, which starts with '/'", text, key)
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return "", fmt.Errorf("S3.KeyTemplate %q gives a key with a control character", text)
	}
	return key, nil
}

// objectRecord is stored beside an archive fetched without a checksum: the
// object's ETag and size when it was fetched.
type objectRecord struct {
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// fetchS3 fetches an archive into CacheDir/s3/<name>-<version>/<base of
// the key>, or CacheDir/s3/<name>/ for a package without a version.
func (f *Fetcher) fetchS3(ctx context.Context, p Package) (string, error) {
	if f.S3.Bucket == "" {
		return "", errors.New("S3.Bucket is not set; S3 packages (name==version, or a bare name) need it")
	}
	key, err := f.S3.Key(p)
	if err != nil {
		return "", err
	}
	src := "s3://" + f.S3.Bucket + "/" + key
	dir := filepath.Join(f.CacheDir, "s3", p.Name)
	if p.Version != "" {
		dir += "-" + p.Version
	}
	local := filepath.Join(dir, path.Base(key))
	recordPath := local + ".etag"

	if p.SHA256 != "" {
		if sum, err := fileSHA256(local); err == nil && sum == p.SHA256 {
			f.logf("%s: cached %s matches its sha256", p.Name, local)
			return local, nil
		}
	}
	var etag string
	if p.SHA256 == "" {
		if rec, ok := readRecord(recordPath); ok {
			if st, err := os.Stat(local); err == nil && st.Mode().IsRegular() && st.Size() == rec.Size {
				etag = rec.ETag
			}
		}
	}

	client, err := f.s3Client(ctx)
	if err != nil {
		return "", err
	}
	in := &s3.GetObjectInput{Bucket: aws.String(f.S3.Bucket), Key: aws.String(key)}
	if etag != "" {
		in.IfNoneMatch = aws.String(etag)
	}
	f.logf("%s: fetching %s", p.Name, src)
	out, err := client.GetObject(ctx, in)
	if err != nil {
		if etag != "" && httpStatus(err) == 304 {
			f.logf("%s: %s unchanged since the cached copy", p.Name, src)
			return local, nil
		}
		return "", describeS3Error(src, err)
	}
	defer out.Body.Close()
	tmp, sum, size, err := writeTemp(dir, out.Body)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", src, err)
	}
	if out.ContentLength != nil && *out.ContentLength != size {
		os.Remove(tmp)
		return "", fmt.Errorf("downloading %s: got %d bytes of %d", src, size, *out.ContentLength)
	}
	if p.SHA256 != "" && sum != p.SHA256 {
		os.Remove(tmp)
		return "", fmt.Errorf("%s has sha256 %s, want %s; the download was not kept: check the object or the sha256= in the requirements file", src, sum, p.SHA256)
	}
	os.Remove(recordPath)
	if err := os.Rename(tmp, local); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if p.SHA256 == "" && out.ETag != nil {
		data, _ := json.Marshal(objectRecord{ETag: *out.ETag, Size: size})
		if err := writeFileAtomic(recordPath, data); err != nil {
			return "", err
		}
	}
	return local, nil
}

func readRecord(path string) (objectRecord, bool) {
	var rec objectRecord
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.ETag == "" {
		return objectRecord{}, false
	}
	return rec, true
}

// s3Client returns the Fetcher's client, made on first use.
func (f *Fetcher) s3Client(ctx context.Context) (*s3.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client != nil {
		return f.client, nil
	}
	var opts []func(*config.LoadOptions) error
	if f.S3.Region != "" {
		opts = append(opts, config.WithRegion(f.S3.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if f.S3.Endpoint == "" {
			return nil, errors.New("no AWS region: set S3.Region or AWS_REGION")
		}
		cfg.Region = "us-east-1"
	}
	f.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if f.S3.Endpoint != "" {
			o.BaseEndpoint = aws.String(f.S3.Endpoint)
			o.UsePathStyle = true
		}
		// The archive is checked against sha256= when one is given; S3
		// stores without checksums of their own are not worth a warning.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return f.client, nil
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func describeS3Error(src string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey":
			return &explained{src + ": no such object; check the version, S3.Bucket and S3.KeyTemplate", err}
		case "NoSuchBucket":
			return &explained{src + ": no such bucket; check S3.Bucket (and S3.Endpoint, S3.Region)", err}
		}
	}
	if httpStatus(err) == 404 {
		return &explained{src + ": not found (HTTP 404); check S3.Bucket and S3.KeyTemplate", err}
	}
	return fmt.Errorf("fetching %s: %w", src, err)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
