// Command s3-go-clients drives an S3 endpoint with the Go clients that Kubeflow Pipelines and Argo
// Workflows ship, configured the way those products configure them, and checks every answer. It exits
// 0 when every check passed, 1 when one failed, 2 on a usage error.
//
// The clients are not re-implemented: the KFP stack is gocloud.dev/blob/s3blob over aws-sdk-go-v2 and
// the Argo stack is minio-go/v7, at the versions KFP 2.17 and Argo Workflows 4.0.5 pin, so a server that
// passes here is compatible with what those binaries send, byte for byte.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

type options struct {
	endpoint  string
	accessKey string
	secretKey string
	bucket    string
	prefix    string
	scenario  string
	// Only for the denied scenario: where the same keys are allowed to write (the positive control,
	// so a server that refuses everything cannot pass) and an access key id the server does not know.
	allowedBucket    string
	allowedPrefix    string
	unknownAccessKey string
	bigArgoBytes     int64
	timeout          time.Duration
	verbose          bool
}

// envOr lets the vitest harness (or a person) pass settings as environment variables; flags win.
func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("s3-go-clients", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", envOr("S3_ENDPOINT", ""), "host:port of the S3 endpoint, plain HTTP (env S3_ENDPOINT)")
	fs.StringVar(&o.accessKey, "access-key", envOr("S3_ACCESS_KEY", ""), "access key id (env S3_ACCESS_KEY)")
	fs.StringVar(&o.secretKey, "secret-key", envOr("S3_SECRET_KEY", ""), "secret access key (env S3_SECRET_KEY)")
	fs.StringVar(&o.bucket, "bucket", envOr("S3_BUCKET", ""), "bucket (env S3_BUCKET); for denied: the bucket the keys must NOT reach")
	fs.StringVar(&o.prefix, "prefix", envOr("S3_PREFIX", ""), "key prefix (env S3_PREFIX); launcher: the pipeline root's path, e.g. private-artifacts/team-a/v2/artifacts/")
	fs.StringVar(&o.scenario, "scenario", envOr("S3_SCENARIO", ""), "kfp-launcher | argo | denied | make-bucket (env S3_SCENARIO)")
	fs.StringVar(&o.allowedBucket, "allowed-bucket", envOr("S3_ALLOWED_BUCKET", ""), "denied only: a bucket the keys may write to (env S3_ALLOWED_BUCKET)")
	fs.StringVar(&o.allowedPrefix, "allowed-prefix", envOr("S3_ALLOWED_PREFIX", ""), "denied only: a prefix in allowed-bucket the keys may write to (env S3_ALLOWED_PREFIX)")
	fs.StringVar(&o.unknownAccessKey, "unknown-access-key", envOr("S3_UNKNOWN_ACCESS_KEY", "NOSUCHACCESSKEY0000000"), "denied only: an access key id the server must not know")
	fs.Int64Var(&o.bigArgoBytes, "argo-big-bytes", 70<<20+12345, "size of the Argo scenario's large file: above minio-go's 16 MiB part size it goes multipart")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.verbose, "v", os.Getenv("S3_VERBOSE") == "1", "print every HTTP request the clients send (env S3_VERBOSE=1)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var missing []string
	for _, required := range []struct{ name, value string }{
		{"-endpoint", o.endpoint}, {"-access-key", o.accessKey}, {"-secret-key", o.secretKey}, {"-bucket", o.bucket}, {"-scenario", o.scenario},
	} {
		if required.value == "" {
			missing = append(missing, required.name)
		}
	}
	if o.scenario == "denied" && o.allowedBucket == "" {
		missing = append(missing, "-allowed-bucket")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if strings.Contains(o.endpoint, "://") {
		return nil, fmt.Errorf("-endpoint is host:port (plain HTTP), not a URL: %q", o.endpoint)
	}
	return o, nil
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3-go-clients:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	r := newRunner(o.verbose)
	fmt.Printf("scenario %s against http://%s bucket %q prefix %q\n", o.scenario, o.endpoint, o.bucket, o.prefix)
	switch o.scenario {
	case "kfp-launcher":
		runKFPLauncher(ctx, r, o)
	case "argo":
		runArgo(ctx, r, o)
	case "denied":
		runDenied(ctx, r, o)
	case "make-bucket":
		// For a stock S3 server (MinIO) used to validate this program; the kfp-artifacts server's
		// buckets exist without being made.
		runMakeBucket(ctx, r, o)
	default:
		fmt.Fprintf(os.Stderr, "s3-go-clients: unknown scenario %q (kfp-launcher | argo | denied | make-bucket)\n", o.scenario)
		os.Exit(2)
	}
	os.Exit(r.finish(o.scenario))
}
