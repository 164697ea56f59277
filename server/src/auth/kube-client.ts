// The Kubernetes API clients of the authorizer, built from @kubernetes/client-node, with a deadline on
// every call: a hung API server must turn into a prompt 503, never a hung request.
import http from "node:http";
import https from "node:https";
import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  KubeConfig,
  ServerConfiguration,
  VersionApi,
  createConfiguration,
  type Middleware,
} from "@kubernetes/client-node";
import { ConfigError } from "../config.js";

export interface KubeApis {
  readonly authentication: AuthenticationV1Api;
  readonly authorization: AuthorizationV1Api;
  readonly version: VersionApi;
  /** The API server URL, for log lines. */
  readonly server: string;
}

/**
 * KUBECONFIG when set, otherwise the pod's service account (in-cluster). Without either, a ConfigError
 * (exit 2) that names the way out: the first `docker run` of the image has neither.
 */
export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (kubeconfigPath) {
    try {
      kubeConfig.loadFromFile(kubeconfigPath);
    } catch (error) {
      throw new ConfigError(`AUTH_MODE=kubernetes: KUBECONFIG ${kubeconfigPath} cannot be loaded (${String(error)}); for local use set AUTH_MODE=none`);
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST) {
      throw new ConfigError(
        "AUTH_MODE=kubernetes found neither a cluster (KUBERNETES_SERVICE_HOST is not set) nor KUBECONFIG: for local use set AUTH_MODE=none",
      );
    }
    kubeConfig.loadFromCluster();
  }
  return kubeConfig;
}

/** Idle keep-alive connections are closed before the API server's own idle timeout (90 s) would. */
const IDLE_SOCKET_TIMEOUT_MS = 30_000;
/** A fresh agent re-reads CA and client certificate files now and then (they may be rotated). */
const AGENT_REFRESH_MS = 10 * 60_000;
/** Concurrent connections to the API server (reviews are coalesced and cached, so this is generous). */
const MAX_SOCKETS = 32;

export function createKubeApis(kubeConfig: KubeConfig, timeoutMs: number): KubeApis {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const agents = new SharedAgent(kubeConfig, timeoutMs);
  // The client sends through node-fetch, which honours an AbortSignal for the connection, the headers
  // and the body; a middleware is the one place that sees every request before it is sent.
  const deadlineAndAgent: Middleware = {
    pre: async (context) => {
      context.setSignal(AbortSignal.timeout(timeoutMs));
      const agent = await agents.get();
      if (agent) context.setAgent(agent);
      return context;
    },
    post: (response) => Promise.resolve(response),
  };
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    promiseMiddleware: [deadlineAndAgent],
  });
  return {
    authentication: new AuthenticationV1Api(configuration),
    authorization: new AuthorizationV1Api(configuration),
    version: new VersionApi(configuration),
    server: cluster.server,
  };
}

/**
 * One keep-alive agent for every call. The client builds a new agent for each request, i.e. a new TCP
 * connection and TLS handshake per review; reusing connections takes that cost off every cache miss
 * and off the API server. Built from the same kubeconfig TLS settings the client would use; proxied
 * clusters keep the client's own (proxy) agents.
 */
class SharedAgent {
  private current: { agent: Promise<http.Agent | undefined>; createdAt: number } | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly timeoutMs: number,
  ) {}

  get(): Promise<http.Agent | undefined> {
    const now = Date.now();
    if (!this.current || now - this.current.createdAt > AGENT_REFRESH_MS) {
      const previous = this.current;
      this.current = { agent: this.build(), createdAt: now };
      // Let calls still using the old agent finish before its sockets are closed.
      if (previous) {
        setTimeout(() => void previous.agent.then((agent) => agent?.destroy()), this.timeoutMs + 1_000).unref();
      }
    }
    return this.current.agent;
  }

  private async build(): Promise<http.Agent | undefined> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster || cluster.proxyUrl) return undefined;
    const common = { keepAlive: true, maxSockets: MAX_SOCKETS, timeout: IDLE_SOCKET_TIMEOUT_MS };
    if (cluster.server.startsWith("http:")) return new http.Agent(common);
    const tls: https.RequestOptions = {};
    try {
      await this.kubeConfig.applyToHTTPSOptions(tls);
    } catch {
      return undefined; // the client's own per-request path reports the problem
    }
    return new https.Agent({
      ...common,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      pfx: tls.pfx,
      passphrase: tls.passphrase,
      servername: tls.servername,
      ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
    });
  }
}

/**
 * One call with a deadline. A connection reset is retried once while time remains: the API server may
 * close a kept-alive connection just as it is reused, and reviews change nothing, so a retry is safe.
 */
export async function callKubeApi<T>(call: () => Promise<T>, timeoutMs: number): Promise<T> {
  const started = Date.now();
  try {
    return await withDeadline(call(), timeoutMs);
  } catch (error) {
    const left = timeoutMs - (Date.now() - started);
    if (!isConnectionReset(error) || left < timeoutMs / 2) throw error;
    return await withDeadline(call(), left);
  }
}

function isConnectionReset(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ECONNRESET" || code === "EPIPE";
}

/**
 * Races `call` against a deadline as well: the signal above covers the HTTP exchange, this covers
 * everything before it (credential plugins, token files) so no call can outlive timeoutMs by much.
 */
export async function withDeadline<T>(call: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(timeoutMs)), timeoutMs + 50);
  });
  try {
    return await Promise.race([call, expired]);
  } finally {
    clearTimeout(timer);
  }
}

export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/** Why a call to the API server failed, in words safe to log (secrets removed). */
export interface KubeCallFailure {
  /** The HTTP status the API server answered with, when it answered. */
  readonly status: number | undefined;
  /**
   * true when the API server refused our own request (4xx): our service account lacks RBAC or our
   * request is malformed — a deployment problem, not the client's and not an outage.
   */
  readonly ourFault: boolean;
  readonly detail: string;
}

/** Replaces every occurrence of each secret in text. */
export function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((result, secret) => (secret ? result.split(secret).join("[redacted]") : result), text);
}

export function describeKubeFailure(error: unknown, secrets: readonly string[]): KubeCallFailure {
  if (error instanceof ApiException) {
    const status = error.code;
    // ApiException's own message embeds the whole response body; a TokenReview echoes the token, so
    // only the Status message is kept, and redacted.
    const body: unknown = error.body;
    let statusMessage = "";
    if (typeof body === "object" && body !== null && "message" in body && typeof body.message === "string") {
      statusMessage = body.message;
    } else if (typeof body === "string") {
      statusMessage = body;
    }
    const detail = redact(`HTTP ${status}${statusMessage ? `: ${statusMessage}` : ""}`, secrets).slice(0, 500);
    return { status, ourFault: status >= 400 && status < 500 && status !== 429, detail };
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const reason =
      error.name === "AbortError" || error.name === "TimeoutError" || error instanceof DeadlineExceeded
        ? "timed out"
        : typeof code === "string"
          ? code
          : error.name;
    return { status: undefined, ourFault: false, detail: redact(`${reason}: ${error.message}`, secrets).slice(0, 500) };
  }
  return { status: undefined, ourFault: false, detail: "unknown error" };
}
