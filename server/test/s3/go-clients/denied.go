package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/minio/minio-go/v7"
	"gocloud.dev/blob"
)

// runDenied checks that keys scoped to one namespace reach nothing else. o.bucket/o.prefix is the
// place they must NOT reach (another namespace's); o.allowedBucket/o.allowedPrefix is where the same
// keys must work, so a server that refuses everything fails here. Both client stacks are tried, since
// the KFP launcher and the Argo executor of a namespace run with the same keys.
func runDenied(ctx context.Context, r *runner, o *options) {
	local, err := os.MkdirTemp("", "s3-go-clients-denied-")
	if err != nil {
		r.fatal("make local directory", err)
		return
	}
	defer os.RemoveAll(local)
	fx, err := writeFixture(local, "probe.txt", 64)
	if err != nil {
		r.fatal("write local fixture", err)
		return
	}
	id := runID()

	kfpAllowed, err := openKFPBucket(ctx, r.rec, o.endpoint, o.accessKey, o.secretKey, o.allowedBucket, o.allowedPrefix)
	if err != nil {
		r.fatal("open the allowed bucket with the KFP stack", err)
		return
	}
	defer kfpAllowed.Close()
	kfpDenied, err := openKFPBucket(ctx, r.rec, o.endpoint, o.accessKey, o.secretKey, o.bucket, o.prefix)
	if err != nil {
		r.fatal("open the forbidden bucket with the KFP stack", err)
		return
	}
	defer kfpDenied.Close()
	argo, err := openArgoClient(r.rec, o.endpoint, o.accessKey, o.secretKey)
	if err != nil {
		r.fatal("create the Argo client", err)
		return
	}

	// Positive control: the keys work where they belong.
	allowedKey := "go-clients-denied/" + id + "/probe.txt"
	r.check(fmt.Sprintf("KFP stack: write, read and delete in the allowed place %s/%s", o.allowedBucket, o.allowedPrefix), func() error {
		if err := uploadLikeLauncher(ctx, kfpAllowed, fx.path, allowedKey); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		data, err := kfpAllowed.ReadAll(ctx, allowedKey)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if int64(len(data)) != fx.size {
			return fmt.Errorf("read %d bytes, expected %d", len(data), fx.size)
		}
		return kfpAllowed.Delete(ctx, allowedKey)
	})
	argoAllowedKey := joinKey(o.allowedPrefix, "go-clients-denied/"+id+"/argo-probe.txt")
	r.check(fmt.Sprintf("Argo stack: put, get and remove in the allowed place %s/%s", o.allowedBucket, o.allowedPrefix), func() error {
		if err := argoPut(ctx, argo, o.allowedBucket, argoAllowedKey, fx.path); err != nil {
			return fmt.Errorf("put: %w", err)
		}
		dest := filepath.Join(local, "argo-probe.txt")
		if err := argo.FGetObject(ctx, o.allowedBucket, argoAllowedKey, dest, minio.GetObjectOptions{}); err != nil {
			return fmt.Errorf("get: %w", err)
		}
		return argo.RemoveObject(ctx, o.allowedBucket, argoAllowedKey, minio.RemoveObjectOptions{})
	})

	// The other namespace. A read of a key that may not exist must still be AccessDenied: answering
	// NoSuchKey would tell another namespace what exists.
	deniedKey := "go-clients-denied/" + id + "/probe.txt"
	where := o.bucket + "/" + o.prefix
	r.check("KFP stack: write under "+where+": AccessDenied", func() error {
		err := uploadLikeLauncher(ctx, kfpDenied, fx.path, deniedKey)
		return expectDeniedGocloud(err)
	})
	r.check("KFP stack: read under "+where+": AccessDenied", func() error {
		rd, err := kfpDenied.NewReader(ctx, deniedKey, nil)
		if err == nil {
			rd.Close()
		}
		return expectDeniedGocloud(err)
	})
	r.check("KFP stack: list under "+where+": AccessDenied", func() error {
		_, err := kfpDenied.List(&blob.ListOptions{Prefix: "go-clients-denied/"}).Next(ctx)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("expected AccessDenied, got an (empty) listing")
		}
		return expectDeniedGocloud(err)
	})
	r.check("KFP stack: attributes under "+where+": 403 (a HEAD error has no body)", func() error {
		_, err := kfpDenied.Attributes(ctx, deniedKey)
		if status := httpStatus(err); status != 403 {
			return fmt.Errorf("expected HTTP 403, got %d: %v", status, err)
		}
		return nil
	})

	argoDeniedKey := joinKey(o.prefix, deniedKey)
	r.check("Argo stack: FPutObject under "+where+": AccessDenied", func() error {
		return expectCode(argoPut(ctx, argo, o.bucket, argoDeniedKey, fx.path), "AccessDenied")
	})
	r.check("Argo stack: GetObject under "+where+": AccessDenied", func() error {
		body, err := argo.GetObject(ctx, o.bucket, argoDeniedKey, minio.GetObjectOptions{})
		if err == nil {
			defer body.Close()
			_, err = io.ReadAll(body)
		}
		return expectCode(err, "AccessDenied")
	})
	r.check("Argo stack: StatObject under "+where+": AccessDenied", func() error {
		_, err := argo.StatObject(ctx, o.bucket, argoDeniedKey, minio.StatObjectOptions{})
		return expectCode(err, "AccessDenied")
	})
	r.check("Argo stack: ListObjects under "+where+": AccessDenied", func() error {
		for obj := range argo.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: o.prefix, Recursive: true}) {
			return expectCode(obj.Err, "AccessDenied")
		}
		return fmt.Errorf("expected AccessDenied, got an empty listing")
	})
	r.check("Argo stack: RemoveObject under "+where+": AccessDenied", func() error {
		return expectCode(argo.RemoveObject(ctx, o.bucket, argoDeniedKey, minio.RemoveObjectOptions{}), "AccessDenied")
	})

	// Wrong credentials, tried where the right ones work, so only the credentials are at fault.
	for _, bad := range []struct {
		what, accessKey, secretKey, code string
	}{
		{"a wrong secret", o.accessKey, o.secretKey + "x", "SignatureDoesNotMatch"},
		{"an unknown access key id", o.unknownAccessKey, o.secretKey, "InvalidAccessKeyId"},
	} {
		r.check(fmt.Sprintf("KFP stack with %s: %s", bad.what, bad.code), func() error {
			b, err := openKFPBucket(ctx, r.rec, o.endpoint, bad.accessKey, bad.secretKey, o.allowedBucket, o.allowedPrefix)
			if err != nil {
				return err
			}
			defer b.Close()
			err = b.WriteAll(ctx, allowedKey, []byte("must not be stored"), nil)
			if refused := expectCode(err, bad.code); refused != nil {
				return fmt.Errorf("write: %w", refused)
			}
			_, err = b.ReadAll(ctx, allowedKey)
			if refused := expectCode(err, bad.code); refused != nil {
				return fmt.Errorf("read: %w", refused)
			}
			return nil
		})
		r.check(fmt.Sprintf("Argo stack with %s: %s", bad.what, bad.code), func() error {
			c, err := openArgoClient(r.rec, o.endpoint, bad.accessKey, bad.secretKey)
			if err != nil {
				return err
			}
			_, err = c.PutObject(ctx, o.allowedBucket, argoAllowedKey, bytes.NewReader([]byte("must not be stored")), 18, minio.PutObjectOptions{SendContentMd5: true})
			if err := expectCode(err, bad.code); err != nil {
				return fmt.Errorf("put: %w", err)
			}
			for obj := range c.ListObjects(ctx, o.allowedBucket, minio.ListObjectsOptions{Prefix: o.allowedPrefix, Recursive: true}) {
				if err := expectCode(obj.Err, bad.code); err != nil {
					return fmt.Errorf("list: %w", err)
				}
				return nil
			}
			return fmt.Errorf("list: expected %s, got an empty listing", bad.code)
		})
	}
	r.check("nothing was stored by the refused requests", func() error {
		if exists, err := kfpAllowed.Exists(ctx, allowedKey); err != nil || exists {
			return fmt.Errorf("%s/%s%s: exists=%v err=%v", o.allowedBucket, o.allowedPrefix, allowedKey, exists, err)
		}
		_, err := argo.StatObject(ctx, o.allowedBucket, argoAllowedKey, minio.StatObjectOptions{})
		if absent := expectCode(err, "NoSuchKey"); absent != nil {
			return fmt.Errorf("%s/%s: %w", o.allowedBucket, argoAllowedKey, absent)
		}
		return nil
	})
}

// expectDeniedGocloud wants a 403 with the S3 code AccessDenied under gocloud's error. (gocloud's
// s3blob maps only the not-found codes to a portable gcerrors code; a refusal is gcerrors.Unknown, so
// the S3 code is what there is to check.)
func expectDeniedGocloud(err error) error {
	if status := httpStatus(err); status != 403 {
		return fmt.Errorf("expected HTTP 403, got %d: %v", status, err)
	}
	return expectCode(err, "AccessDenied")
}

// httpStatus is the HTTP status under an aws-sdk-go-v2 error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func joinKey(prefix, rest string) string {
	if prefix == "" {
		return rest
	}
	return strings.TrimSuffix(prefix, "/") + "/" + rest
}

func runMakeBucket(ctx context.Context, r *runner, o *options) {
	c, err := openArgoClient(r.rec, o.endpoint, o.accessKey, o.secretKey)
	if err != nil {
		r.fatal("create the client", err)
		return
	}
	r.check("make bucket "+o.bucket, func() error {
		err := c.MakeBucket(ctx, o.bucket, minio.MakeBucketOptions{})
		if code := s3Code(err); code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return err
	})
}
