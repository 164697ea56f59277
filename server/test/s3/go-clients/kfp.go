package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// openKFPBucket opens a bucket the way the KFP 2.17 launcher and driver do for a minio:// pipeline root
// with the default provider settings (backend/src/v2/config getDefaultMinioSessionInfo, then
// backend/src/v2/objectstore newS3Client and OpenBucket): region "minio", endpoint over plain HTTP,
// path-style addressing (forcePathStyle defaults to true), static keys from the
// mlpipeline-minio-artifact Secret, 5 attempts with the standard retryer, and checksums only where an
// operation requires them (the setting that keeps service/s3 v1.73.0 and later from sending the
// CRC32 headers and aws-chunked trailers that many S3-compatible stores reject). The bucket is then prefixed with the pipeline root's path.
func openKFPBucket(ctx context.Context, rec *recorder, endpoint, accessKey, secretKey, bucketName, prefix string) (*blob.Bucket, error) {
	loadOptions := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.AddWithMaxAttempts(retry.NewStandard(), 5)
		}),
		awsconfig.WithRegion("minio"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOptions...)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.EndpointOptions.DisableHTTPS = true
		o.BaseEndpoint = aws.String("http://" + endpoint)
		// The client LoadDefaultConfig resolved, only observed.
		o.HTTPClient = awsHTTPClient{rec: rec, next: o.HTTPClient}
	})
	opened, err := s3blob.OpenBucketV2(ctx, client, bucketName, nil)
	if err != nil {
		return nil, err
	}
	return blob.PrefixedBucket(opened, prefix), nil
}

// uploadLikeLauncher copies a local file to key the way the launcher's uploadFile does: NewWriter with
// no options (so gocloud's default 5 MiB part size and the S3 upload manager's own concurrency),
// io.Copy from the *os.File, Close.
func uploadLikeLauncher(ctx context.Context, b *blob.Bucket, localPath, key string) error {
	w, err := b.NewWriter(ctx, key, nil)
	if err != nil {
		return fmt.Errorf("NewWriter: %w", err)
	}
	f, err := os.Open(localPath)
	if err != nil {
		_ = w.Close()
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		_ = w.Close()
		return fmt.Errorf("copy: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("close writer: %w", err)
	}
	return nil
}

func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s", time.Now().UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// The directory artifact's files: names that trip URL encoding (space, '+', '%', '=', '&', non-ASCII),
// an empty file, a nested directory, and one file above gocloud's 5 MiB part size.
var launcherFiles = []struct {
	rel  string
	size int64
}{
	{"tiny.txt", 13},
	{"empty", 0},
	{"big.bin", 7<<20 + 4321},
	{"with space.txt", 100},
	{"a+b=c&d.txt", 200},
	{"100%.txt", 42},
	{"ünïcødé-模型-😀.json", 300},
	{"sub dir/nested+file.txt", 1000},
}

func runKFPLauncher(ctx context.Context, r *runner, o *options) {
	local, err := os.MkdirTemp("", "s3-go-clients-kfp-")
	if err != nil {
		r.fatal("make local directory", err)
		return
	}
	defer os.RemoveAll(local)
	var fixtures []fixture
	for _, f := range launcherFiles {
		fx, err := writeFixture(local, f.rel, f.size)
		if err != nil {
			r.fatal("write local fixture "+f.rel, err)
			return
		}
		fixtures = append(fixtures, fx)
	}

	var b *blob.Bucket
	if !r.check("open bucket as the KFP launcher does (s3blob.OpenBucketV2, prefixed)", func() (err error) {
		b, err = openKFPBucket(ctx, r.rec, o.endpoint, o.accessKey, o.secretKey, o.bucket, o.prefix)
		return err
	}) {
		return
	}
	defer b.Close()

	// The launcher's output URI layout: <pipeline root>/<pipeline name>/<run id>/<task>/<artifact>.
	dir := path.Join("go-clients-pipeline", runID(), "system-container-impl", "model")
	expected := map[string]fixture{}
	for _, fx := range fixtures {
		expected[dir+"/"+fx.rel] = fx
	}

	for _, fx := range fixtures {
		key := dir + "/" + fx.rel
		r.check(fmt.Sprintf("upload %q (%d bytes)", fx.rel, fx.size), func() error {
			mark := r.rec.mark()
			if err := uploadLikeLauncher(ctx, b, fx.path, key); err != nil {
				return err
			}
			return expectUploadShape(r.rec.since(mark), fx.size)
		})
	}

	listed := map[string]int64{}
	r.check("list the directory as DownloadBlob does (List iterator, prefix, no delimiter)", func() error {
		it := b.List(&blob.ListOptions{Prefix: dir})
		var order []string
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if obj.IsDir {
				return fmt.Errorf("listing without a delimiter returned a directory entry %q", obj.Key)
			}
			listed[obj.Key] = obj.Size
			order = append(order, obj.Key)
		}
		return compareListing(expected, listed, order)
	})

	r.check("list the directory two keys per page (ListObjectsV2 continuation tokens)", func() error {
		token := blob.FirstPageToken
		seen := map[string]int64{}
		var order []string
		pages := 0
		for {
			objs, next, err := b.ListPage(ctx, token, 2, &blob.ListOptions{Prefix: dir + "/"})
			if err != nil {
				return fmt.Errorf("page %d: %w", pages+1, err)
			}
			pages++
			if len(objs) > 2 {
				return fmt.Errorf("page %d has %d objects, asked for at most 2", pages, len(objs))
			}
			for _, obj := range objs {
				if _, dup := seen[obj.Key]; dup {
					return fmt.Errorf("key %q listed twice across pages", obj.Key)
				}
				seen[obj.Key] = obj.Size
				order = append(order, obj.Key)
			}
			if next == nil {
				break
			}
			if pages > 2*len(expected) {
				return fmt.Errorf("more than %d pages for %d keys: the continuation token does not advance", pages, len(expected))
			}
			token = next
		}
		if want := (len(expected) + 1) / 2; pages != want && pages != want+1 {
			return fmt.Errorf("%d pages for %d keys at 2 per page, expected %d (or %d with an empty last page)", pages, len(expected), want, want+1)
		}
		return compareListing(expected, seen, order)
	})

	for _, key := range sortedKeys(expected) {
		fx := expected[key]
		r.check(fmt.Sprintf("download %q as downloadFile does and compare bytes", fx.rel), func() error {
			rd, err := b.NewReader(ctx, key, nil)
			if err != nil {
				return err
			}
			defer rd.Close()
			got, n, err := sha256Of(rd)
			if err != nil {
				return fmt.Errorf("read body: %w", err)
			}
			if n != fx.size || got != fx.sha256 {
				return fmt.Errorf("expected %d bytes sha256 %s, got %d bytes sha256 %s", fx.size, fx.sha256, n, got)
			}
			if rd.Size() != fx.size {
				return fmt.Errorf("reader Size() %d, expected %d", rd.Size(), fx.size)
			}
			return nil
		})
		r.check(fmt.Sprintf("attributes of %q (size, ETag)", fx.rel), func() error {
			attrs, err := b.Attributes(ctx, key)
			if err != nil {
				return err
			}
			if attrs.Size != fx.size {
				return fmt.Errorf("size %d, expected %d", attrs.Size, fx.size)
			}
			if strings.Trim(attrs.ETag, `"`) == "" {
				return fmt.Errorf("no ETag")
			}
			if attrs.ModTime.IsZero() {
				return fmt.Errorf("no Last-Modified")
			}
			return nil
		})
	}

	missing := dir + "/no-such-file"
	r.check("read a missing key: gcerrors.NotFound (GET)", func() error {
		rd, err := b.NewReader(ctx, missing, nil)
		if err == nil {
			rd.Close()
			return fmt.Errorf("expected NotFound, got a reader")
		}
		if code := gcerrors.Code(err); code != gcerrors.NotFound {
			return fmt.Errorf("expected gcerrors.NotFound, got %v: %v", code, err)
		}
		return expectCode(err, "NoSuchKey")
	})
	r.check("attributes of a missing key: gcerrors.NotFound (HEAD)", func() error {
		_, err := b.Attributes(ctx, missing)
		if code := gcerrors.Code(err); code != gcerrors.NotFound {
			return fmt.Errorf("expected gcerrors.NotFound, got %v: %v", code, err)
		}
		return nil
	})
	r.check("Exists of a missing key is false", func() error {
		exists, err := b.Exists(ctx, missing)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("Exists returned true")
		}
		return nil
	})

	for _, key := range sortedKeys(expected) {
		r.check(fmt.Sprintf("delete %q", expected[key].rel), func() error { return b.Delete(ctx, key) })
	}
	r.check("the directory lists empty after the deletes", func() error {
		objs, _, err := b.ListPage(ctx, blob.FirstPageToken, 1000, &blob.ListOptions{Prefix: dir})
		if err != nil {
			return err
		}
		if len(objs) != 0 {
			var keys []string
			for _, obj := range objs {
				keys = append(keys, obj.Key)
			}
			return fmt.Errorf("still listed: %q", keys)
		}
		return nil
	})
	r.check("deleting a deleted key: gcerrors.NotFound", func() error {
		err := b.Delete(ctx, dir+"/tiny.txt")
		if code := gcerrors.Code(err); code != gcerrors.NotFound {
			return fmt.Errorf("expected gcerrors.NotFound, got %v: %v", code, err)
		}
		return nil
	})
}

// expectUploadShape checks how the upload manager talked: one PutObject under the 5 MiB part size,
// otherwise CreateMultipartUpload, at least two UploadPart and one CompleteMultipartUpload; and, with
// checksums "when required", no flexible-checksum headers or trailers.
func expectUploadShape(exchanges []exchange, size int64) error {
	var puts, creates, parts, completes int
	for _, e := range exchanges {
		if len(e.checksums) > 0 {
			return fmt.Errorf("request carries %s although checksums are only calculated when required: %s", strings.Join(e.checksums, ","), e)
		}
		if strings.HasPrefix(e.contentSHA256, "STREAMING-") {
			return fmt.Errorf("aws-sdk-go-v2 sent a streaming payload (%s), expected a plain signed payload: %s", e.contentSHA256, e)
		}
		switch {
		case e.method == "PUT" && strings.Contains(e.url, "partNumber=") && strings.Contains(e.url, "uploadId="):
			parts++
		case e.method == "PUT":
			puts++
		case isCreateMultipart(e):
			creates++
		case isCompleteMultipart(e):
			completes++
		}
	}
	if size < 5<<20 {
		if puts != 1 || parts != 0 {
			return fmt.Errorf("expected one PutObject for %d bytes, saw %d PutObject and %d UploadPart", size, puts, parts)
		}
		return nil
	}
	if creates != 1 || parts < 2 || completes != 1 {
		return fmt.Errorf("expected a multipart upload for %d bytes, saw %d CreateMultipartUpload, %d UploadPart, %d CompleteMultipartUpload", size, creates, parts, completes)
	}
	return nil
}

func sortedKeys(m map[string]fixture) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compareListing checks that exactly the expected keys were listed with their sizes, in S3's order:
// ascending by the keys' UTF-8 bytes, which is Go's string order.
func compareListing(expected map[string]fixture, listed map[string]int64, order []string) error {
	var problems []string
	for key, fx := range expected {
		size, ok := listed[key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %q", key))
		case size != fx.size:
			problems = append(problems, fmt.Sprintf("%q listed with size %d, expected %d", key, size, fx.size))
		}
	}
	for key := range listed {
		if _, ok := expected[key]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %q", key))
		}
	}
	if !sort.StringsAreSorted(order) {
		problems = append(problems, fmt.Sprintf("not in ascending UTF-8 byte order: %q", order))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}
