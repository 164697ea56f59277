package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
)

// exchange is one HTTP request a client sent and the status it got, as the recorder saw it. Recording
// sits below the clients' signing, so it changes nothing they send; it lets the checks assert *how*
// they talked (multipart or not, which payload signing mode) and lets a failure show the requests.
type exchange struct {
	method        string
	url           string
	contentSHA256 string
	contentMD5    bool
	decodedLength string
	expect        string
	checksums     []string
	status        int
	err           string
	// The XML a POST sent and the body of an error answer, shown with a failed check.
	requestBody  string
	responseBody string
}

func (e exchange) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.method, e.url)
	if e.contentSHA256 != "" {
		fmt.Fprintf(&b, " x-amz-content-sha256=%s", abbreviate(e.contentSHA256))
	}
	if e.decodedLength != "" {
		fmt.Fprintf(&b, " x-amz-decoded-content-length=%s", e.decodedLength)
	}
	if e.contentMD5 {
		b.WriteString(" content-md5")
	}
	if e.expect != "" {
		fmt.Fprintf(&b, " expect=%s", e.expect)
	}
	if len(e.checksums) > 0 {
		fmt.Fprintf(&b, " %s", strings.Join(e.checksums, ","))
	}
	if e.err != "" {
		fmt.Fprintf(&b, " -> transport error: %s", e.err)
	} else {
		fmt.Fprintf(&b, " -> %d", e.status)
	}
	if e.requestBody != "" {
		fmt.Fprintf(&b, "\n      request body: %s", e.requestBody)
	}
	if e.responseBody != "" {
		fmt.Fprintf(&b, "\n      response body: %s", e.responseBody)
	}
	return b.String()
}

// abbreviate keeps payload hashes readable in logs; the signing modes are printed whole.
func abbreviate(v string) string {
	if len(v) == 64 && !strings.Contains(v, "-") {
		return v[:12] + "…"
	}
	return v
}

type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
	verbose   bool
}

// maxShownBody bounds the copy of a body kept for the report: the XML documents of S3 are small.
const maxShownBody = 16 << 10

// peekRequestBody reads a small POST body (CompleteMultipartUpload, DeleteObjects) and puts back an
// identical reader, so the client sends the same bytes.
func (r *recorder) peekRequestBody(req *http.Request) string {
	if req.Method != http.MethodPost || req.Body == nil || req.ContentLength <= 0 || req.ContentLength > maxShownBody {
		return ""
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return string(body)
}

// peekErrorBody does the same for an error answer, so a failure shows the server's code and message.
func (r *recorder) peekErrorBody(resp *http.Response) string {
	if resp == nil || resp.StatusCode < 400 || resp.Body == nil {
		return ""
	}
	original := resp.Body
	body, err := io.ReadAll(io.LimitReader(original, maxShownBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), original), original}
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return string(body)
}

func (r *recorder) record(req *http.Request, resp *http.Response, err error, requestBody string) {
	e := exchange{
		method:        req.Method,
		url:           req.URL.RequestURI(),
		contentSHA256: req.Header.Get("X-Amz-Content-Sha256"),
		contentMD5:    req.Header.Get("Content-Md5") != "",
		decodedLength: req.Header.Get("X-Amz-Decoded-Content-Length"),
		expect:        req.Header.Get("Expect"),
	}
	for name := range req.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-checksum-") || lower == "x-amz-sdk-checksum-algorithm" || lower == "x-amz-trailer" {
			e.checksums = append(e.checksums, lower)
		}
	}
	sort.Strings(e.checksums)
	e.requestBody = requestBody
	if err != nil {
		e.err = err.Error()
	} else {
		e.status = resp.StatusCode
		e.responseBody = r.peekErrorBody(resp)
	}
	r.mu.Lock()
	r.exchanges = append(r.exchanges, e)
	r.mu.Unlock()
	if r.verbose {
		fmt.Println("    http:", e)
	}
}

func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.exchanges)
}

func (r *recorder) since(mark int) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.exchanges[mark:]...)
}

// roundTripper wraps the transport minio-go is given.
type roundTripper struct {
	rec  *recorder
	next http.RoundTripper
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	body := t.rec.peekRequestBody(req)
	resp, err := t.next.RoundTrip(req)
	t.rec.record(req, resp, err, body)
	return resp, err
}

// awsHTTPClient wraps the HTTP client aws-sdk-go-v2 is given (its interface is Do, not RoundTrip).
type awsHTTPClient struct {
	rec  *recorder
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (c awsHTTPClient) Do(req *http.Request) (*http.Response, error) {
	body := c.rec.peekRequestBody(req)
	resp, err := c.next.Do(req)
	c.rec.record(req, resp, err, body)
	return resp, err
}

type runner struct {
	rec    *recorder
	passed int
	failed []string
}

func newRunner(verbose bool) *runner {
	return &runner{rec: &recorder{verbose: verbose}}
}

// check runs one named check; on failure it prints the error and every request the check sent, so a
// report can name the request, what was expected and what came back.
func (r *runner) check(name string, fn func() error) bool {
	mark := r.rec.mark()
	err := fn()
	if err == nil {
		r.passed++
		fmt.Printf("ok   %s\n", name)
		return true
	}
	r.failed = append(r.failed, name)
	fmt.Printf("FAIL %s\n     %s\n", name, strings.ReplaceAll(err.Error(), "\n", "\n     "))
	exchanges := r.rec.since(mark)
	if len(exchanges) > 0 {
		fmt.Printf("     requests sent by this check (%d):\n", len(exchanges))
		shown := exchanges
		if len(shown) > 20 {
			shown = append(shown[:10:10], shown[len(shown)-10:]...)
			fmt.Println("       (first 10 and last 10)")
		}
		for _, e := range shown {
			fmt.Printf("       %s\n", e)
		}
	}
	return false
}

// fatal records a failure that makes the rest of the scenario meaningless (no client, no fixtures).
func (r *runner) fatal(name string, err error) {
	r.check(name, func() error { return err })
}

func (r *runner) finish(scenario string) int {
	if len(r.failed) == 0 {
		fmt.Printf("%s: %d passed, 0 failed\n", scenario, r.passed)
		return 0
	}
	fmt.Printf("%s: %d passed, %d failed: %s\n", scenario, r.passed, len(r.failed), strings.Join(r.failed, "; "))
	return 1
}

// fixture is a local file with known content, as a pipeline step would leave it on disk.
type fixture struct {
	rel    string
	path   string
	size   int64
	sha256 string
}

// writeFixture writes size pseudo-random bytes (seeded by name, so reruns are identical) to dir/rel.
func writeFixture(dir, rel string, size int64) (fixture, error) {
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fixture{}, err
	}
	f, err := os.Create(path)
	if err != nil {
		return fixture{}, err
	}
	defer f.Close()
	seed := sha256.Sum256([]byte(rel))
	rng := rand.NewChaCha8(seed)
	hash := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, hash), rng, size); err != nil {
		return fixture{}, err
	}
	if err := f.Close(); err != nil {
		return fixture{}, err
	}
	return fixture{rel: rel, path: path, size: size, sha256: hex.EncodeToString(hash.Sum(nil))}, nil
}

func sha256Of(r io.Reader) (string, int64, error) {
	hash := sha256.New()
	n, err := io.Copy(hash, r)
	return hex.EncodeToString(hash.Sum(nil)), n, err
}

func sha256OfFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return sha256Of(f)
}

// s3Code is the S3 error code a client reported ("AccessDenied", "NoSuchKey", ...), or "" when the
// error carries none (a transport error, or a HEAD whose error has no body).
func s3Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	var minioErr minio.ErrorResponse
	if errors.As(err, &minioErr) {
		return minioErr.Code
	}
	return ""
}

// expectCode fails unless err is an S3 error with one of the codes.
func expectCode(err error, codes ...string) error {
	if err == nil {
		return fmt.Errorf("expected S3 error %s, got success", strings.Join(codes, " or "))
	}
	got := s3Code(err)
	for _, code := range codes {
		if got == code {
			return nil
		}
	}
	return fmt.Errorf("expected S3 error %s, got code %q: %v", strings.Join(codes, " or "), got, err)
}

// The two clients spell the query differently ("?uploads=" and "?uploads&x-id=CreateMultipartUpload").
func isCreateMultipart(e exchange) bool {
	return e.method == "POST" && strings.Contains(e.url, "uploads") && !strings.Contains(e.url, "uploadId=")
}

func isCompleteMultipart(e exchange) bool {
	return e.method == "POST" && strings.Contains(e.url, "uploadId=")
}
