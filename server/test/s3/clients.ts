// What the S3 and IAM tests share: an AWS SDK client as KFP's launcher configures it, and the error code
// a call was refused with.
import { IAMServiceException } from "@aws-sdk/client-iam";
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";

export interface KeyPair {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** Path-style, region `minio` (the launcher's), no retries: a refusal is seen once. */
export function s3Client(endpoint: string, credentials: KeyPair): S3Client {
  return new S3Client({ endpoint, region: "minio", forcePathStyle: true, credentials, maxAttempts: 1 });
}

/** The S3 or IAM error code the call failed with; throws when it succeeded or failed otherwise. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException || error instanceof IAMServiceException) return error.name;
    throw error;
  }
  throw new Error("the call succeeded");
}
