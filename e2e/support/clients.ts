// In-cluster clients: long-lived pods from the product image (it has Node.js but no shell or curl) that
// run as a ServiceAccount of a tenant namespace with a projected token for the KFP audience, exactly as
// a pipeline pod would. Each call runs a small fetch script in the pod (`kubectl exec`) and returns what
// the server answered, so all assertions stay in the test files.
import { createHash } from "node:crypto";
import { kubectl } from "./commands.js";
import { image, KFP_AUDIENCE, NODE_BINARY } from "./env.js";
import { apply, waitForReadyPods, type Manifest } from "./kube.js";

const KFP_TOKEN_DIR = "/var/run/secrets/kfp";
const API_SERVER_TOKEN_DIR = "/var/run/secrets/apiserver";

/** Which credential the pod sends. `api-server-token` is a valid token for the wrong audience. */
export type Credential = "kfp-token" | "api-server-token" | "none";

export type RequestBody = { readonly text: string } | { readonly base64: string } | { readonly fill: { readonly size: number; readonly char: string } };

export interface ClientRequest {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  /** Default: the pod's KFP token. */
  readonly credential?: Credential;
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly size: number;
  readonly sha256: string;
  /** The body as text, when it is at most 1 MiB. */
  readonly text: string | undefined;
}

/** Runs inside the pod: argv[1] is the JSON list of requests; prints the JSON list of answers. */
const REQUEST_SCRIPT = `
const fs = require("node:fs");
const crypto = require("node:crypto");
const tokens = { "kfp-token": "${KFP_TOKEN_DIR}/token", "api-server-token": "${API_SERVER_TOKEN_DIR}/token" };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function send(request) {
  const headers = { ...(request.headers || {}) };
  const credential = request.credential || "kfp-token";
  if (credential !== "none") headers.authorization = "Bearer " + fs.readFileSync(tokens[credential], "utf8").trim();
  let body;
  if (request.body && request.body.text !== undefined) body = request.body.text;
  else if (request.body && request.body.base64 !== undefined) body = Buffer.from(request.body.base64, "base64");
  else if (request.body && request.body.fill !== undefined) body = Buffer.alloc(request.body.fill.size, request.body.fill.char);
  // Only failures to connect are retried (a Service's endpoints may lag a pod's readiness), for 30 s.
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const response = await fetch(request.url, { method: request.method || "GET", headers, body, redirect: "manual", signal: AbortSignal.timeout(20000) });
      const bytes = Buffer.from(await response.arrayBuffer());
      return {
        status: response.status,
        headers: Object.fromEntries(response.headers),
        size: bytes.length,
        sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
        text: bytes.length <= 1048576 ? bytes.toString("utf8") : undefined,
      };
    } catch (error) {
      if (Date.now() > deadline) throw new Error(request.url + ": " + ((error.cause && error.cause.code) || error.message));
      await sleep(1000);
    }
  }
}
(async () => {
  const answers = [];
  for (const request of JSON.parse(process.argv[1])) answers.push(await send(request));
  process.stdout.write(JSON.stringify(answers));
})().catch((error) => { console.error(error.message); process.exit(1); });
`;

// PID 1 ignores SIGTERM unless it handles it; exit at once so namespace deletion is quick.
const IDLE_SCRIPT = `process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1 << 30);`;

export interface ClientPodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  /** Pins the pod to a node (DaemonSet suite). */
  readonly nodeName?: string;
}

export const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

export class ClientPod {
  private constructor(readonly spec: ClientPodSpec) {}

  /** Creates the pods (in one apply) and waits until every one runs. */
  static async startAll(specs: readonly ClientPodSpec[], timeoutMs = 120_000): Promise<ClientPod[]> {
    await apply(specs.map(clientPodManifest));
    for (const spec of specs) await waitForReadyPods(spec.namespace, `kfp-artifacts.e2e/client=${spec.name}`, 1, timeoutMs);
    return specs.map((spec) => new ClientPod(spec));
  }

  /** Sends the requests one after the other; one answer per request, in order. */
  async requestAll<const Requests extends readonly ClientRequest[]>(requests: Requests): Promise<{ -readonly [Index in keyof Requests]: ClientResponse }> {
    const { stdout } = await kubectl(
      ["exec", "-n", this.spec.namespace, this.spec.name, "-c", "client", "--", NODE_BINARY, "-e", REQUEST_SCRIPT, JSON.stringify(requests)],
      { timeoutMs: 60_000 + requests.length * 25_000 },
    );
    const answers = JSON.parse(stdout) as ClientResponse[];
    if (answers.length !== requests.length) throw new Error(`client ${this.spec.name} answered ${answers.length} of ${requests.length} requests`);
    return answers as { -readonly [Index in keyof Requests]: ClientResponse };
  }

  async request(request: ClientRequest): Promise<ClientResponse> {
    const [answer] = await this.requestAll([request] as const);
    return answer;
  }

  /** The JSON body of an answer (fails with the body when it is not JSON). */
  static json<T>(response: ClientResponse): T {
    try {
      return JSON.parse(response.text ?? "") as T;
    } catch {
      throw new Error(`expected JSON, got ${response.status}: ${(response.text ?? `<${response.size} bytes>`).slice(0, 500)}`);
    }
  }
}

function clientPodManifest(spec: ClientPodSpec): Manifest {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: spec.name, namespace: spec.namespace, labels: { "kfp-artifacts.e2e/client": spec.name } },
    spec: {
      serviceAccountName: spec.serviceAccount,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 0,
      restartPolicy: "Never",
      ...(spec.nodeName === undefined ? {} : { nodeName: spec.nodeName }),
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "client",
          image,
          imagePullPolicy: "IfNotPresent",
          command: [NODE_BINARY, "-e", IDLE_SCRIPT],
          resources: { requests: { cpu: "5m", memory: "32Mi" }, limits: { memory: "128Mi" } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
          volumeMounts: [
            { name: "kfp-token", mountPath: KFP_TOKEN_DIR, readOnly: true },
            { name: "api-server-token", mountPath: API_SERVER_TOKEN_DIR, readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: "kfp-token", projected: { sources: [{ serviceAccountToken: { path: "token", audience: KFP_AUDIENCE, expirationSeconds: 3600 } }] } },
        // No audience: the API server's own, which the artifact server must refuse.
        { name: "api-server-token", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] } },
      ],
    },
  };
}

export const serviceUrl = (service: string, namespace: string, port = 8080) => `http://${service}.${namespace}.svc:${port}`;

export const artifactUrl = (base: string, namespace: string, key: string) =>
  `${base}/v1/namespaces/${namespace}/artifacts/${key.split("/").map(encodeURIComponent).join("/")}`;

export const listUrl = (base: string, namespace: string, prefix = "") =>
  `${base}/v1/namespaces/${namespace}/artifacts${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ""}`;
