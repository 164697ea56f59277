// The IAM subset Kubeflow's profile controller calls (sync.py): for each profile namespace it asks
// `CreateAccessKey(UserName=<namespace>)` and `PutUserPolicy`, then writes the answer into the
// namespace's `mlpipeline-minio-artifact` Secret. Here CreateAccessKey answers the namespace's derived
// key (credentials.ts), so the unmodified controller hands every profile its own key; the policy is
// accepted and ignored, since Kubernetes RBAC decides what a key may do. Only the system key may call
// these, and minting a namespace's key is authorized as `createArtifactCredentials` in that namespace.
import { randomBytes } from "node:crypto";
import type { Context } from "hono";
import type { Authorizer } from "../auth/types.js";
import { AccessDenied } from "../auth/access-denied.js";
import { NAMESPACE_PATTERN } from "../config.js";
import type { AppEnv, RequestRecord } from "../http/env.js";
import type { S3KeyRing } from "./credentials.js";
import type { WireRequest } from "./sigv4.js";
import { xmlDocument } from "./xml.js";
import type { S3Caller } from "./app.js";

const IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/";

class IamError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** IAM's query API: a form POST to "/" (its credential scope names the `iam` service). */
export function isIamRequest(c: Context<AppEnv>, wire: WireRequest, bucket: string): boolean {
  if (c.req.method !== "POST" || bucket !== "") return false;
  const contentType = c.req.header("content-type") ?? "";
  return contentType.startsWith("application/x-www-form-urlencoded") || /\/iam\/aws4_request/.test(c.req.header("authorization") ?? "") || wire.query.some(([name]) => name === "Action");
}

export interface IamDeps {
  readonly keys: S3KeyRing;
  readonly authorizer: Authorizer;
  readonly record: RequestRecord;
  readonly now: () => number;
}

export async function handleIam(c: Context<AppEnv>, caller: S3Caller, deps: IamDeps): Promise<Response> {
  try {
    const form = new URLSearchParams((caller.body ?? Buffer.alloc(0)).toString("utf8"));
    const action = form.get("Action") ?? "";
    deps.record.operation = `iam:${action || "unknown"}`;
    if (!caller.isSystemKey) throw new IamError(403, "AccessDenied", "Only the system key may manage access keys.");
    const userName = form.get("UserName") ?? "";
    switch (action) {
      case "CreateAccessKey": {
        const namespace = await admitUser(userName, caller, deps);
        const key = deps.keys.namespaceKey(namespace);
        if (key === undefined) throw new IamError(409, "ServiceFailure", "No master key is configured: set S3_MASTER_KEY or the static key pair.");
        return respond(c, action, {
          AccessKey: {
            UserName: userName,
            AccessKeyId: key.accessKeyId,
            Status: "Active",
            SecretAccessKey: key.secretAccessKey,
            CreateDate: new Date(deps.now()).toISOString(),
          },
        });
      }
      case "PutUserPolicy":
      case "DeleteUserPolicy":
        await admitUser(userName, caller, deps);
        return respond(c, action, undefined);
      case "CreateUser":
      case "GetUser": {
        await admitUser(userName, caller, deps);
        return respond(c, action, { User: { UserName: userName, UserId: userName, Arn: `arn:aws:iam:::user/${userName}`, Path: "/", CreateDate: new Date(0).toISOString() } });
      }
      default:
        throw new IamError(400, "InvalidAction", `The action ${action || "(none)"} is not supported; this server implements CreateAccessKey, PutUserPolicy, DeleteUserPolicy, CreateUser and GetUser.`);
    }
  } catch (error) {
    if (error instanceof IamError) return iamError(c, error);
    if (error instanceof AccessDenied) return iamError(c, new IamError(403, "AccessDenied", "The system key may not create keys in this namespace."));
    const status = (error as { status?: number }).status;
    if (status === 503) return iamError(c, new IamError(503, "ServiceUnavailable", "authorization service unavailable"));
    throw error;
  }
}

/** An IAM user here is a namespace; the caller must be allowed to mint its key. */
async function admitUser(userName: string, caller: S3Caller, deps: IamDeps): Promise<string> {
  if (!NAMESPACE_PATTERN.test(userName)) throw new IamError(400, "ValidationError", "UserName must be a namespace name (a DNS-1123 label).");
  deps.record.namespace = userName;
  deps.record.verb = "createArtifactCredentials";
  if (caller.identity.via !== "none") await deps.authorizer.authorizeIdentity(caller.identity, userName, "createArtifactCredentials");
  deps.record.decision = "allow";
  return userName;
}

function respond(c: Context<AppEnv>, action: string, result: Record<string, unknown> | undefined): Response {
  const content: Record<string, unknown> = { "@_xmlns": IAM_XMLNS };
  if (result !== undefined) content[`${action}Result`] = result;
  content.ResponseMetadata = { RequestId: randomBytes(8).toString("hex") };
  return c.body(xmlDocument(`${action}Response`, content as never, false), 200, { "Content-Type": "text/xml" });
}

function iamError(c: Context<AppEnv>, error: IamError): Response {
  const body = xmlDocument(
    "ErrorResponse",
    { "@_xmlns": IAM_XMLNS, Error: { Type: error.status >= 500 ? "Receiver" : "Sender", Code: error.code, Message: error.message }, RequestId: randomBytes(8).toString("hex") },
    false,
  );
  c.get("record").s3Error = error.code;
  return c.body(body, error.status, { "Content-Type": "text/xml" });
}
