package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// minioPartSize is minio-go's minimum part size: FPutObject goes multipart above it, with parts of it.
const minioPartSize = 16 << 20

// openArgoClient builds the client the Argo Workflows 4.0.5 controller and executor build for an S3
// artifact repository with static keys and `insecure: true` (workflow/artifacts/s3 NewS3Client):
// credentials.NewStaticV4, Secure false, minio.DefaultTransport(false), no Region (so minio-go asks
// the bucket's location with GetBucketLocation before its first request on a bucket and signs with
// the answer) and automatic bucket lookup (path-style for an IP or a non-AWS host name).
func openArgoClient(rec *recorder, endpoint, accessKey, secretKey string) (*minio.Client, error) {
	transport, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, err
	}
	return minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:       false,
		Transport:    roundTripper{rec: rec, next: transport},
		Region:       "",
		BucketLookup: minio.BucketLookupAuto,
	})
}

// argoPut is Argo's PutFile: FPutObject with SendContentMd5 (Argo always sets it).
//
// How minio-go v7.0.100 then signs, over plain HTTP: trailing headers are off (Argo does not enable
// them), so no CRC32C trailer is added, and every object PUT and every UploadPart is signed
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD: a seed signature in Authorization, the body re-framed as
// aws-chunked 64 KiB chunks each carrying a chunk-signature chained from the previous one,
// X-Amz-Decoded-Content-Length with the real size, and a Content-MD5 of the decoded bytes. Over
// HTTPS the same calls would send UNSIGNED-PAYLOAD instead. SendContentMd5 also makes the multipart
// path the sequential one (putObjectMultipartStreamOptionalChecksum), one 16 MiB part at a time.
func argoPut(ctx context.Context, c *minio.Client, bucket, key, localPath string) error {
	_, err := c.FPutObject(ctx, bucket, key, localPath, minio.PutObjectOptions{SendContentMd5: true})
	return err
}

func runArgo(ctx context.Context, r *runner, o *options) {
	local, err := os.MkdirTemp("", "s3-go-clients-argo-")
	if err != nil {
		r.fatal("make local directory", err)
		return
	}
	defer os.RemoveAll(local)

	// Laid out as Argo archives a workflow's logs and outputs: <key prefix>/<workflow>/<pod>/main.log.
	wf := "go-clients-wf-" + runID()
	base := strings.TrimPrefix(o.prefix+"/"+wf+"/", "/")
	base = strings.ReplaceAll(base, "//", "/")
	type object struct {
		key string
		fx  fixture
	}
	var objects []object
	for _, f := range []struct {
		rel  string
		size int64
	}{
		{"main.log", 3000},
		{"outputs/big.tgz", o.bigArgoBytes},
		{"sub/a.txt", 10},
		{"sub/b c+d=é.txt", 20},
		// encoding/xml writes the apostrophe of this key as &#39; in the multi-delete body.
		{"sub/it's.txt", 30},
	} {
		fx, err := writeFixture(local, f.rel, f.size)
		if err != nil {
			r.fatal("write local fixture "+f.rel, err)
			return
		}
		objects = append(objects, object{key: base + f.rel, fx: fx})
	}
	logKey, bigKey := objects[0].key, objects[1].key

	var c *minio.Client
	if !r.check("create the client as the Argo controller does (minio.New, NewStaticV4, Secure false, no region)", func() (err error) {
		c, err = openArgoClient(r.rec, o.endpoint, o.accessKey, o.secretKey)
		return err
	}) {
		return
	}

	start := r.rec.mark()
	r.check(fmt.Sprintf("FPutObject the log %q (%d bytes): one streaming-signed PUT", objects[0].fx.rel, objects[0].fx.size), func() error {
		mark := r.rec.mark()
		if err := argoPut(ctx, c, o.bucket, logKey, objects[0].fx.path); err != nil {
			return err
		}
		return expectStreamingPuts(r.rec.since(mark), []int64{objects[0].fx.size}, false)
	})
	r.check("minio-go asked the bucket's location (GetBucketLocation) before its first request", func() error {
		for _, e := range r.rec.since(start) {
			if e.method == "GET" && strings.Contains(e.url, "?location") {
				if e.status != 200 {
					return fmt.Errorf("GetBucketLocation answered %d: %s", e.status, e)
				}
				return nil
			}
		}
		return fmt.Errorf("no GET ?location= request was sent")
	})
	r.check(fmt.Sprintf("FPutObject a %d-byte output: multipart, %d-byte streaming-signed parts", o.bigArgoBytes, minioPartSize), func() error {
		mark := r.rec.mark()
		if err := argoPut(ctx, c, o.bucket, bigKey, objects[1].fx.path); err != nil {
			return err
		}
		var parts []int64
		for left := o.bigArgoBytes; left > 0; left -= minioPartSize {
			parts = append(parts, min(left, minioPartSize))
		}
		return expectStreamingPuts(r.rec.since(mark), parts, true)
	})
	for _, obj := range objects[2:] {
		r.check(fmt.Sprintf("FPutObject %q", obj.fx.rel), func() error { return argoPut(ctx, c, o.bucket, obj.key, obj.fx.path) })
	}

	for _, obj := range objects {
		r.check(fmt.Sprintf("StatObject %q (size, ETag)", obj.fx.rel), func() error {
			info, err := c.StatObject(ctx, o.bucket, obj.key, minio.StatObjectOptions{})
			if err != nil {
				return err
			}
			if info.Size != obj.fx.size {
				return fmt.Errorf("size %d, expected %d", info.Size, obj.fx.size)
			}
			if info.ETag == "" {
				return fmt.Errorf("no ETag")
			}
			if info.LastModified.IsZero() {
				return fmt.Errorf("no Last-Modified")
			}
			return nil
		})
		r.check(fmt.Sprintf("GetObject %q (Argo's OpenFile) and compare bytes", obj.fx.rel), func() error {
			body, err := c.GetObject(ctx, o.bucket, obj.key, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer body.Close()
			got, n, err := sha256Of(body)
			if err != nil {
				return fmt.Errorf("read body: %w", err)
			}
			if n != obj.fx.size || got != obj.fx.sha256 {
				return fmt.Errorf("expected %d bytes sha256 %s, got %d bytes sha256 %s", obj.fx.size, obj.fx.sha256, n, got)
			}
			return nil
		})
	}
	r.check(fmt.Sprintf("FGetObject %q (Argo's GetFile) and compare bytes", objects[1].fx.rel), func() error {
		dest := filepath.Join(local, "downloaded", "big.tgz")
		if err := c.FGetObject(ctx, o.bucket, bigKey, dest, minio.GetObjectOptions{}); err != nil {
			return err
		}
		got, n, err := sha256OfFile(dest)
		if err != nil {
			return err
		}
		if n != objects[1].fx.size || got != objects[1].fx.sha256 {
			return fmt.Errorf("expected %d bytes sha256 %s, got %d bytes sha256 %s", objects[1].fx.size, objects[1].fx.sha256, n, got)
		}
		return nil
	})

	allKeys := map[string]int64{}
	for _, obj := range objects {
		allKeys[obj.key] = obj.fx.size
	}
	for _, maxKeys := range []int{0, 1} {
		label := "one request"
		if maxKeys == 1 {
			label = "one key per page"
		}
		r.check(fmt.Sprintf("ListObjects recursive under the workflow's prefix (Argo's ListDirectory), %s", label), func() error {
			return expectListing(c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true, MaxKeys: maxKeys}), allKeys, true)
		})
		r.check(fmt.Sprintf("ListObjects with delimiter / (Argo's IsDirectory), %s", label), func() error {
			want := map[string]int64{logKey: objects[0].fx.size, base + "outputs/": 0, base + "sub/": 0}
			return expectListing(c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: false, MaxKeys: maxKeys}), want, false)
		})
	}
	r.check("ListObjects of a prefix that holds nothing is empty", func() error {
		return expectListing(c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: base + "nothing-here/", Recursive: true}), map[string]int64{}, true)
	})

	r.check("presigned GET URL fetched with net/http", func() error {
		u, err := c.PresignedGetObject(ctx, o.bucket, logKey, 10*time.Minute, nil)
		if err != nil {
			return err
		}
		status, body, err := httpGet(ctx, u.String())
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("GET %s: expected 200, got %d: %s", u.RequestURI(), status, body)
		}
		got, n, _ := sha256Of(strings.NewReader(body))
		if n != objects[0].fx.size || got != objects[0].fx.sha256 {
			return fmt.Errorf("expected %d bytes sha256 %s, got %d bytes sha256 %s", objects[0].fx.size, objects[0].fx.sha256, n, got)
		}
		return nil
	})
	r.check("presigned GET URL with an altered signature: 403 SignatureDoesNotMatch", func() error {
		u, err := c.PresignedGetObject(ctx, o.bucket, logKey, 10*time.Minute, nil)
		if err != nil {
			return err
		}
		q := u.Query()
		sig := q.Get("X-Amz-Signature")
		q.Set("X-Amz-Signature", flipHex(sig))
		u.RawQuery = q.Encode()
		return expectHTTPError(ctx, u, 403, "SignatureDoesNotMatch")
	})
	r.check("presigned GET URL past its expiry: 403 AccessDenied", func() error {
		u, err := c.PresignedGetObject(ctx, o.bucket, logKey, time.Second, nil)
		if err != nil {
			return err
		}
		// X-Amz-Date has one-second resolution: two seconds are past a one-second expiry whatever the
		// sub-second time of signing was.
		time.Sleep(2100 * time.Millisecond)
		return expectHTTPError(ctx, u, 403, "AccessDenied")
	})

	r.check("RemoveObject the log (Argo's Delete)", func() error {
		return c.RemoveObject(ctx, o.bucket, logKey, minio.RemoveObjectOptions{})
	})
	r.check("StatObject of the removed log: NoSuchKey", func() error {
		_, err := c.StatObject(ctx, o.bucket, logKey, minio.StatObjectOptions{})
		return expectCode(err, "NoSuchKey")
	})
	r.check("GetObject of the removed log: NoSuchKey on first read", func() error {
		body, err := c.GetObject(ctx, o.bucket, logKey, minio.GetObjectOptions{})
		if err != nil {
			return expectCode(err, "NoSuchKey")
		}
		defer body.Close()
		_, err = io.ReadAll(body)
		return expectCode(err, "NoSuchKey")
	})
	r.check("RemoveObject of a key that does not exist succeeds (S3 semantics)", func() error {
		return c.RemoveObject(ctx, o.bucket, base+"never-written", minio.RemoveObjectOptions{})
	})
	r.check("RemoveObjects (multi-object delete) of the rest, with one missing key", func() error {
		keys := make(chan minio.ObjectInfo, len(objects))
		for _, obj := range objects[1:] {
			keys <- minio.ObjectInfo{Key: obj.key}
		}
		keys <- minio.ObjectInfo{Key: base + "never-written-either"}
		close(keys)
		var problems []string
		for e := range c.RemoveObjects(ctx, o.bucket, keys, minio.RemoveObjectsOptions{}) {
			problems = append(problems, fmt.Sprintf("%s: %v", e.ObjectName, e.Err))
		}
		if len(problems) > 0 {
			return fmt.Errorf("delete errors: %s", strings.Join(problems, "; "))
		}
		// A success answer is not enough: a key misread from the request body is "deleted" too (deleting
		// a missing key succeeds), so each key must be gone.
		for _, obj := range objects[1:] {
			_, err := c.StatObject(ctx, o.bucket, obj.key, minio.StatObjectOptions{})
			if refused := expectCode(err, "NoSuchKey"); refused != nil {
				problems = append(problems, fmt.Sprintf("%q after RemoveObjects: %v", obj.key, refused))
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("still there:\n%s", strings.Join(problems, "\n"))
		}
		return nil
	})
	r.check("the workflow's prefix lists empty after the deletes", func() error {
		return expectListing(c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}), map[string]int64{}, true)
	})
}

// expectStreamingPuts checks that minio-go sent one PUT per expected part size, each signed
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD with its decoded length and a Content-MD5, and that each
// succeeded; multipart adds CreateMultipartUpload and CompleteMultipartUpload around them.
func expectStreamingPuts(exchanges []exchange, sizes []int64, multipart bool) error {
	var puts []exchange
	var creates, completes int
	for _, e := range exchanges {
		switch {
		case e.method == "PUT":
			puts = append(puts, e)
		case isCreateMultipart(e):
			creates++
		case isCompleteMultipart(e):
			completes++
		}
	}
	if len(puts) != len(sizes) {
		return fmt.Errorf("expected %d PUT requests, saw %d", len(sizes), len(puts))
	}
	for i, e := range puts {
		if e.contentSHA256 != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
			return fmt.Errorf("PUT %d signed %q, expected STREAMING-AWS4-HMAC-SHA256-PAYLOAD: %s", i+1, e.contentSHA256, e)
		}
		if e.decodedLength != strconv.FormatInt(sizes[i], 10) {
			return fmt.Errorf("PUT %d x-amz-decoded-content-length %q, expected %d: %s", i+1, e.decodedLength, sizes[i], e)
		}
		if !e.contentMD5 {
			return fmt.Errorf("PUT %d has no Content-MD5: %s", i+1, e)
		}
		if multipart != strings.Contains(e.url, "partNumber=") {
			return fmt.Errorf("PUT %d: expected multipart=%v: %s", i+1, multipart, e)
		}
	}
	if multipart && (creates != 1 || completes != 1) {
		return fmt.Errorf("expected one CreateMultipartUpload and one CompleteMultipartUpload, saw %d and %d", creates, completes)
	}
	return nil
}

// expectListing drains a minio-go listing and compares it with want (key -> size; common prefixes
// end in "/" and have size 0). Objects must come in ascending order when sorted is set; with a
// delimiter minio-go yields a page's objects before its prefixes, so only the set is compared.
func expectListing(ch <-chan minio.ObjectInfo, want map[string]int64, sorted bool) error {
	got := map[string]int64{}
	var order []string
	for obj := range ch {
		if obj.Err != nil {
			return obj.Err
		}
		if _, dup := got[obj.Key]; dup {
			return fmt.Errorf("%q listed twice", obj.Key)
		}
		got[obj.Key] = obj.Size
		order = append(order, obj.Key)
	}
	var problems []string
	for key, size := range want {
		gotSize, ok := got[key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %q", key))
		case gotSize != size:
			problems = append(problems, fmt.Sprintf("%q listed with size %d, expected %d", key, gotSize, size))
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %q", key))
		}
	}
	if sorted && !sort.StringsAreSorted(order) {
		problems = append(problems, fmt.Sprintf("not in ascending order: %q", order))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("listing %q:\n%s", order, strings.Join(problems, "\n"))
	}
	return nil
}

func httpGet(ctx context.Context, rawURL string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func expectHTTPError(ctx context.Context, u *url.URL, status int, code string) error {
	got, body, err := httpGet(ctx, u.String())
	if err != nil {
		return err
	}
	if got != status || !strings.Contains(body, "<Code>"+code+"</Code>") {
		return fmt.Errorf("GET %s: expected %d with <Code>%s</Code>, got %d: %s", u.RequestURI(), status, code, got, body)
	}
	return nil
}

// flipHex changes the last hex digit, keeping the signature well-formed but wrong.
func flipHex(sig string) string {
	if sig == "" {
		return "0"
	}
	last := sig[len(sig)-1]
	replacement := byte('0')
	if last == '0' {
		replacement = '1'
	}
	return sig[:len(sig)-1] + string(replacement)
}
