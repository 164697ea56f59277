// A small stand-in for the Kubernetes API server, over real HTTP on 127.0.0.1, so tests exercise the
// real @kubernetes/client-node code path (kubeconfig → client → HTTP → JSON) without a cluster.
//
// It answers the three calls kfp-artifacts makes:
//   POST /apis/authentication.k8s.io/v1/tokenreviews         (tokens → user, groups, audiences)
//   POST /apis/authorization.k8s.io/v1/subjectaccessreviews  (RBAC-like rules → allowed / denied)
//   GET  /version                                            (readiness probe)
// and can be made slow, hanging, failing (any status) or stopped, to prove the server fails closed.
//
// Typical use:
//   const api = await FakeKubeApi.start({
//     tokens: { "alice-token": { user: "alice", groups: ["team-a"] } },
//     rules: [{ group: "team-a", namespace: "team-a", verbs: EDITOR_VERBS }],
//   });
//   const kubeconfigPath = await api.writeKubeconfig(tmpDir);   // → KUBECONFIG for the server
//   ... api.calls.tokenReviews, api.received.subjectAccessReviews[0].groups ...
//   await api.stop();
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";

/** The artifact verbs, for building rules. */
export const VIEWER_VERBS: readonly string[] = ["readArtifact"];
export const EDITOR_VERBS: readonly string[] = ["readArtifact", "writeArtifact", "deleteArtifact"];

/**
 * TEST-ONLY certificate and key for `tls: true` (self-signed, SAN 127.0.0.1 and localhost, valid
 * 2000-2199, so no test depends on today's date). They protect nothing: never use them elsewhere.
 */
export const FAKE_TLS_CERT_PEM = `-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIBATAKBggqhkjOPQQDAjAeMRwwGgYDVQQDDBNmYWtlLWt1
YmUtYXBpc2VydmVyMCAXDTAwMDEwMTAwMDAwMFoYDzIxOTkxMjMxMjM1OTU5WjAe
MRwwGgYDVQQDDBNmYWtlLWt1YmUtYXBpc2VydmVyMFkwEwYHKoZIzj0CAQYIKoZI
zj0DAQcDQgAE8Wv7tUZ+BoIsPfDcwQPACl6pgRQioQXsAJirLxnuxA6+cJsu44B1
y7a7stTJSLB7raSzTJ/jaJZzIimNCnp6QKNeMFwwDwYDVR0TAQH/BAUwAwEB/zAO
BgNVHQ8BAf8EBAMCAoQwGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MB0GA1Ud
DgQWBBSlDd2RAlWmXWNXRGBIrCQQAn1aJTAKBggqhkjOPQQDAgNIADBFAiB0niE+
lDx+qFsNdhssJu13yn2gtrfegUCMmL6ttdhy8wIhAIJodMpxztUSMiPqXa0w0n3g
ZIdhAdZk9bhilRrWVACq
-----END CERTIFICATE-----
`;
const FAKE_TLS_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfp1MzNWiYKRElOke
UoKPWUmp5tdLXHWtDD61zmPQRPihRANCAATxa/u1Rn4Ggiw98NzBA8AKXqmBFCKh
BewAmKsvGe7EDr5wmy7jgHXLtruy1MlIsHutpLNMn+NolnMiKY0KenpA
-----END PRIVATE KEY-----
`;

/** The audiences a real API server assumes when a TokenReview names none. */
export const API_SERVER_AUDIENCES: readonly string[] = ["https://kubernetes.default.svc.cluster.local"];

export interface FakeTokenOwner {
  readonly user: string;
  readonly groups?: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  /** Audiences the token was issued for. Default: ["pipelines.kubeflow.org"]. */
  readonly audiences?: readonly string[];
  /**
   * false imitates an authenticator that ignores audiences (e.g. a webhook): the review says
   * "authenticated" for any requested audience and reports `status.audiences` as the token's own.
   * Default true: behaves like the real service-account authenticator (intersection, or unauthenticated).
   */
  readonly audienceAware?: boolean;
}

/** Grants `verbs` in `namespace` ("*" = every namespace) to a user or a group. */
export interface FakeRule {
  readonly user?: string;
  readonly group?: string;
  readonly namespace: string;
  readonly verbs: readonly string[];
  /** Default "pipelines.kubeflow.org". */
  readonly apiGroup?: string;
  /** Default "runs". */
  readonly resource?: string;
}

/** What the fake does with each request instead of answering normally. */
export type FakeFailure =
  | { readonly kind: "none" }
  /** Answers with this HTTP status and a Kubernetes Status body (`echoRequest` copies the request body into its message — the worst an API could do, for log-redaction tests). */
  | { readonly kind: "status"; readonly status: number; readonly echoRequest?: boolean }
  /** Reads the request and never answers. */
  | { readonly kind: "hang" };

export interface FakeKubeApiOptions {
  readonly tokens?: Readonly<Record<string, FakeTokenOwner>>;
  readonly rules?: readonly FakeRule[];
  /** The bearer token the authorizer itself must present (it goes into the kubeconfig). Default: random. */
  readonly callerToken?: string;
  /** Port to listen on; default 0 (any free port). */
  readonly port?: number;
  /** Serve HTTPS with FAKE_TLS_CERT_PEM (the kubeconfig then carries it as the CA) instead of HTTP. */
  readonly tls?: boolean;
}

export interface ReceivedTokenReview {
  readonly token: string;
  readonly audiences: readonly string[];
}

export interface ReceivedAccessReview {
  readonly user?: string;
  readonly groups?: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  readonly resourceAttributes?: Readonly<Record<string, string>>;
}

export interface FakeCallCounts {
  tokenReviews: number;
  subjectAccessReviews: number;
  version: number;
  /** Requests rejected because the caller's own credentials were wrong. */
  unauthenticatedCallers: number;
}

const TOKEN_REVIEWS_PATH = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const DEFAULT_TOKEN_AUDIENCES = ["pipelines.kubeflow.org"];

export class FakeKubeApi {
  /** Tokens the fake authenticates; mutable between requests. */
  readonly tokens = new Map<string, FakeTokenOwner>();
  /** Rules the fake authorizes with; mutable between requests. */
  rules: FakeRule[];
  /** Calls answered (or failed on purpose) per endpoint, since start or the last resetCounts(). */
  readonly calls: FakeCallCounts = { tokenReviews: 0, subjectAccessReviews: 0, version: 0, unauthenticatedCallers: 0 };
  /** Request bodies received, in order (spec only). */
  readonly received: { tokenReviews: ReceivedTokenReview[]; subjectAccessReviews: ReceivedAccessReview[] } = {
    tokenReviews: [],
    subjectAccessReviews: [],
  };
  /** TCP connections accepted since start. */
  connections = 0;
  /** Delay before every answer, in ms (a slow API server). */
  delayMs = 0;
  failure: FakeFailure = { kind: "none" };
  /** The next this-many requests have their connection destroyed without an answer (a reset). */
  resetConnections = 0;
  readonly callerToken: string;

  readonly tls: boolean;

  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port: number;

  private constructor(options: FakeKubeApiOptions) {
    for (const [token, owner] of Object.entries(options.tokens ?? {})) this.tokens.set(token, owner);
    this.rules = [...(options.rules ?? [])];
    this.callerToken = options.callerToken ?? `caller-${randomBytes(12).toString("hex")}`;
    this.port = options.port ?? 0;
    this.tls = options.tls ?? false;
  }

  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(options);
    await api.listen();
    return api;
  }

  /** Base URL, e.g. http://127.0.0.1:40123 (stable across stop()/resume()). */
  get url(): string {
    return `${this.tls ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Closes the listener and every open connection: clients now get ECONNREFUSED. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port after stop(). */
  async resume(): Promise<void> {
    if (!this.server) await this.listen();
  }

  resetCounts(): void {
    this.calls.tokenReviews = 0;
    this.calls.subjectAccessReviews = 0;
    this.calls.version = 0;
    this.calls.unauthenticatedCallers = 0;
    this.received.tokenReviews.length = 0;
    this.received.subjectAccessReviews.length = 0;
  }

  /**
   * Writes `<directory>/kubeconfig` pointing at this fake and returns its path: over HTTPS with
   * FAKE_TLS_CERT_PEM as the CA, over HTTP with `insecure-skip-tls-verify: true` (which the client
   * requires for http:// servers). `token` defaults to callerToken.
   */
  async writeKubeconfig(directory: string, token: string = this.callerToken): Promise<string> {
    return writeKubeconfigFile(path.join(directory, "kubeconfig"), this.url, token, this.tls ? FAKE_TLS_CERT_PEM : undefined);
  }

  private async listen(): Promise<void> {
    const handler = (request: http.IncomingMessage, response: http.ServerResponse) => this.handle(request, response);
    const server = this.tls
      ? https.createServer({ cert: FAKE_TLS_CERT_PEM, key: FAKE_TLS_KEY_PEM }, handler)
      : http.createServer(handler);
    server.on("connection", (socket: Socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const answer = () => this.answer(request, body, response);
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
  }

  private answer(request: http.IncomingMessage, body: string, response: http.ServerResponse): void {
    if (response.destroyed) return;
    const route = `${request.method ?? ""} ${(request.url ?? "").split("?")[0]}`;
    const endpoint =
      route === `POST ${TOKEN_REVIEWS_PATH}`
        ? "tokenReviews"
        : route === `POST ${ACCESS_REVIEWS_PATH}`
          ? "subjectAccessReviews"
          : route === "GET /version"
            ? "version"
            : undefined;
    if (!endpoint) return sendStatus(response, 404, "NotFound", `the fake has no ${route}`);
    this.calls[endpoint] += 1;
    if (this.resetConnections > 0) {
      this.resetConnections -= 1;
      request.socket.destroy();
      return;
    }

    if (request.headers.authorization !== `Bearer ${this.callerToken}`) {
      this.calls.unauthenticatedCallers += 1;
      return sendStatus(response, 401, "Unauthorized", "Unauthorized");
    }
    const failure = this.failure;
    if (failure.kind === "hang") return; // the socket stays open until the client gives up or stop()
    if (failure.kind === "status") {
      const message = failure.echoRequest ? `rejected request ${body}` : `the fake answers ${failure.status}`;
      return sendStatus(response, failure.status, "InternalError", message);
    }

    if (endpoint === "version") {
      return sendJson(response, 200, { major: "1", minor: "33", gitVersion: "v1.33.0-fake", platform: "linux/amd64" });
    }
    let review: { spec?: Record<string, unknown> };
    try {
      review = JSON.parse(body) as { spec?: Record<string, unknown> };
    } catch {
      return sendStatus(response, 400, "BadRequest", "the request body is not JSON");
    }
    const spec = review.spec ?? {};
    const status = endpoint === "tokenReviews" ? this.reviewToken(spec) : this.reviewAccess(spec);
    sendJson(response, 201, { ...review, status });
  }

  private reviewToken(spec: Record<string, unknown>): Record<string, unknown> {
    const token = typeof spec.token === "string" ? spec.token : "";
    const requested = Array.isArray(spec.audiences) ? (spec.audiences as string[]) : [];
    this.received.tokenReviews.push({ token, audiences: requested });
    const owner = this.tokens.get(token);
    if (!owner) return { authenticated: false, error: "invalid bearer token" };
    const tokenAudiences = owner.audiences ?? DEFAULT_TOKEN_AUDIENCES;
    const wanted = requested.length > 0 ? requested : API_SERVER_AUDIENCES;
    let audiences: readonly string[];
    if (owner.audienceAware === false) {
      audiences = tokenAudiences;
    } else {
      audiences = wanted.filter((audience) => tokenAudiences.includes(audience));
      if (audiences.length === 0) {
        return { authenticated: false, error: "token audiences are invalid for the target audiences" };
      }
    }
    const user: Record<string, unknown> = { username: owner.user, groups: [...(owner.groups ?? [])] };
    if (owner.uid !== undefined) user.uid = owner.uid;
    if (owner.extra !== undefined) user.extra = owner.extra;
    return { authenticated: true, user, audiences };
  }

  private reviewAccess(spec: Record<string, unknown>): Record<string, unknown> {
    const received = spec as ReceivedAccessReview;
    this.received.subjectAccessReviews.push(received);
    const attributes = received.resourceAttributes ?? {};
    const groups = received.groups ?? [];
    const allowed = this.rules.some(
      (rule) =>
        ((rule.user !== undefined && rule.user === received.user) ||
          (rule.group !== undefined && groups.includes(rule.group))) &&
        (rule.namespace === "*" || rule.namespace === attributes.namespace) &&
        (rule.apiGroup ?? "pipelines.kubeflow.org") === attributes.group &&
        (rule.resource ?? "runs") === attributes.resource &&
        (rule.verbs.includes("*") || rule.verbs.includes(attributes.verb ?? "")),
    );
    return allowed ? { allowed: true, reason: "allowed by a fake rule" } : { allowed: false, reason: "no fake rule allows it" };
  }
}

/**
 * Writes a kubeconfig for `server` authenticating with `token` and trusting `caPem` (https servers);
 * returns `filePath`. JSON is valid YAML.
 */
export async function writeKubeconfigFile(filePath: string, server: string, token: string, caPem?: string): Promise<string> {
  const cluster: Record<string, unknown> = { server };
  if (server.startsWith("http:")) cluster["insecure-skip-tls-verify"] = true;
  if (caPem !== undefined) cluster["certificate-authority-data"] = Buffer.from(caPem).toString("base64");
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "fake", cluster }],
    users: [{ name: "kfp-artifacts", user: { token } }],
    contexts: [{ name: "fake", context: { cluster: "fake", user: "kfp-artifacts" } }],
    "current-context": "fake",
  };
  await writeFile(filePath, JSON.stringify(kubeconfig, null, 2), { mode: 0o600 });
  return filePath;
}

function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

function sendStatus(response: http.ServerResponse, code: number, reason: string, message: string): void {
  sendJson(response, code, { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code });
}
