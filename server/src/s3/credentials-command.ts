// `node server.mjs s3-credentials <namespace> [serviceaccount]`: prints a namespace's S3 key pair as the
// JSON of a `mlpipeline-minio-artifact` Secret's data (accesskey, secretkey), from the same master key
// the server verifies with (S3_MASTER_KEY, else S3_SECRET_KEY). For operators who hand a key to a
// namespace by hand; Kubeflow's profile controller gets the same pair through IAM CreateAccessKey.
import { NAMESPACE_PATTERN } from "../config.js";
import { deriveSecretKey, namespaceAccessKeyId, SERVICE_ACCOUNT_PATTERN } from "./credentials.js";

/** Runs the command; resolves the exit code (2 for a usage error, with the reason on stderr). */
export function runCredentialsCommand(args: readonly string[], env: Record<string, string | undefined>, out: (text: string) => void, err: (text: string) => void): number {
  const [namespace, serviceAccount] = args;
  if (namespace === undefined || args.length > 2) {
    err("usage: s3-credentials <namespace> [serviceaccount]\n");
    return 2;
  }
  if (!NAMESPACE_PATTERN.test(namespace)) {
    err(`s3-credentials: "${namespace}" is not a namespace name (a DNS-1123 label)\n`);
    return 2;
  }
  if (serviceAccount !== undefined && !SERVICE_ACCOUNT_PATTERN.test(serviceAccount)) {
    err(`s3-credentials: "${serviceAccount}" is not a ServiceAccount name\n`);
    return 2;
  }
  const masterKey = env.S3_MASTER_KEY || env.S3_SECRET_KEY;
  if (!masterKey) {
    err("s3-credentials: set S3_MASTER_KEY (or S3_SECRET_KEY) to the server's, from its Secret\n");
    return 2;
  }
  const accessKeyId = namespaceAccessKeyId(namespace, serviceAccount);
  out(`${JSON.stringify({ accesskey: accessKeyId, secretkey: deriveSecretKey(masterKey, accessKeyId) })}\n`);
  return 0;
}
