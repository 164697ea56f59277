// The Kubernetes API clients of the authorizer, built from @kubernetes/client-node, with a deadline on
// every call: a hung API server must turn into a prompt 503, never a hung request.
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

export interface KubeApis {
  readonly authentication: AuthenticationV1Api;
  readonly authorization: AuthorizationV1Api;
  readonly version: VersionApi;
  /** The API server URL, for log lines. */
  readonly server: string;
}

/** KUBECONFIG when set, otherwise the pod's service account (in-cluster). */
export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (kubeconfigPath) {
    kubeConfig.loadFromFile(kubeconfigPath);
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST) {
      throw new Error(
        "AUTH_MODE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST is not set); " +
          "use AUTH_MODE=none for local use",
      );
    }
    kubeConfig.loadFromCluster();
  }
  return kubeConfig;
}

export function createKubeApis(kubeConfig: KubeConfig, timeoutMs: number): KubeApis {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  // The client sends through node-fetch, which honours an AbortSignal for the connection, the headers
  // and the body; a middleware is the one place that sees every request before it is sent.
  const deadline: Middleware = {
    pre: (context) => {
      context.setSignal(AbortSignal.timeout(timeoutMs));
      return Promise.resolve(context);
    },
    post: (response) => Promise.resolve(response),
  };
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    promiseMiddleware: [deadline],
  });
  return {
    authentication: new AuthenticationV1Api(configuration),
    authorization: new AuthorizationV1Api(configuration),
    version: new VersionApi(configuration),
    server: cluster.server,
  };
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
