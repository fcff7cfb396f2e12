package elb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbapi "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2api "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// Config says where the load balancers live and how their instances are
// reached. The zero Config uses the SDK's default region and AWS itself,
// and names hosts by their public DNS names without a port.
type Config struct {
	// Region is the AWS region of the load balancers. "" means the SDK's
	// default chain (AWS_REGION, AWS_DEFAULT_REGION, the shared config file).
	Region string

	// Endpoint is the base URL of an AWS-compatible API that serves the
	// ELB (Classic and v2) and the EC2 calls, e.g.
	// "http://127.0.0.1:4566". "" means AWS.
	Endpoint string

	// Port is the SSH port appended to each host ("name:port"). 0 means
	// none: hosts are plain DNS names.
	Port int

	// UsePrivate names hosts by their private DNS names instead of their
	// public ones, for a deploy run from inside the VPC.
	UsePrivate bool
}

// Instance is a running EC2 instance registered with a load balancer.
type Instance struct {
	ID             string // e.g. i-0123456789abcdef0
	DNSName        string // public DNS name; "" when the instance has none
	PrivateDNSName string // private DNS name
	State          string // health in the load balancer: InService, OutOfService or Unknown
}

// InService is the [Instance.State] of an instance that receives traffic.
const InService = "InService"

// ErrNoRegion is the error [New] returns when neither Config.Region nor
// the SDK's default chain gives a region.
var ErrNoRegion = errors.New("elb: no AWS region: set Config.Region, AWS_REGION, or region in the AWS config file")

// Client talks to the ELB and EC2 APIs of one region.
type Client struct {
	cfg    Config
	region string
	elb    *elbapi.Client
	elbv2  *elbv2api.Client
	ec2    *ec2.Client

	// pollMin and pollMax bound the delay between health checks in
	// WaitInService and the waits of Balancer and TargetGroup.
	pollMin, pollMax time.Duration
}

// New returns a Client for cfg. It loads the AWS SDK's default
// configuration, so credentials come from the standard chain; no request
// is sent until a method is called.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("elb: Config.Port %d is out of range 0-65535", cfg.Port)
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("elb: Config.Endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("elb: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, ErrNoRegion
	}
	if awsCfg.HTTPClient == nil {
		awsCfg.HTTPClient = awshttp.NewBuildableClient()
	}
	awsCfg.HTTPClient = plainBodyClient{awsCfg.HTTPClient}
	c := &Client{
		cfg:     cfg,
		region:  awsCfg.Region,
		pollMin: 5 * time.Second,
		pollMax: 30 * time.Second,
	}
	c.elb = elbapi.NewFromConfig(awsCfg, func(o *elbapi.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	c.elbv2 = elbv2api.NewFromConfig(awsCfg, func(o *elbv2api.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	c.ec2 = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return c, nil
}

// plainBodyClient sends requests with a body that is only an
// io.ReadCloser. The SDK wraps request bodies in a reader whose WriteTo
// returns io.EOF once the SDK has closed it, which it does as soon as the
// response headers arrive; net/http's check for extra body bytes after the
// Content-Length may still be running then, takes that io.EOF for a failed
// body read, and closes the connection while the response body is being
// read. Against a fast endpoint (a local AWS-compatible API) that fails
// the call with "use of closed network connection" and retries it.
// Hiding WriteTo makes the check use Read, which reports the end of a
// closed body as a plain end of input.
type plainBodyClient struct{ aws.HTTPClient }

func (c plainBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return c.HTTPClient.Do(req)
}

// Region is the AWS region the Client works in.
func (c *Client) Region() string { return c.region }

// apiError wraps err from the call op on load balancer lb. A load balancer
// that does not exist gets a message of its own: the usual cause is the
// wrong region or account.
func (c *Client) apiError(lb, op string, err error) error {
	if _, ok := errors.AsType[*types.AccessPointNotFoundException](err); ok {
		return fmt.Errorf("elb: load balancer %q not found in region %s: %w", lb, c.region, err)
	}
	return fmt.Errorf("elb: load balancer %q: %s: %w", lb, op, err)
}
