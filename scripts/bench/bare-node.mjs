// The ceiling of one Node.js event loop on this machine, for `make bench`: Node's HTTP server with
// nothing of kfp-artifacts in it. Whatever the artifact server does on top can only be slower than this.
//   MODE=fixed     answers every request with the same 4 KiB from memory (no disk, no authorization, no router);
//   MODE=discard   reads each request body, drops it and answers 201 (200 to a GET);
//   MODE=contract  answers a GET of 4 KiB with only what the artifact server's contract asks of each request,
//                  each its cheapest way: the bearer token looked up in a cache of decisions (its SHA-256
//                  in a Map), one lstat of FILE on the event loop to know the bytes kept in memory are still
//                  the file's, the response headers a client relies on (ETag, Last-Modified, Content-Length),
//                  a request counter and a duration histogram in prom-client, and one JSON access-log line,
//                  written once per event-loop turn. No router, no framework, no validation of names.
import { createHash } from "node:crypto";
import { lstatSync, readFileSync } from "node:fs";
import http from "node:http";

const mode = process.env.MODE;
const body = mode === "contract" ? readFileSync(String(process.env.FILE)) : Buffer.alloc(4096, 0x61);

/** MODE=contract's per-request work; undefined otherwise. */
async function contractWork() {
  if (mode !== "contract") return undefined;
  const { Counter, Histogram, Registry } = await import("prom-client");
  const registry = new Registry();
  const requests = new Counter({ name: "requests_total", help: "requests", labelNames: ["route", "method", "status"], registers: [registry] });
  const duration = new Histogram({ name: "request_seconds", help: "duration", labelNames: ["route", "method"], registers: [registry] });
  const file = String(process.env.FILE);
  const etag = `"${createHash("sha256").update(body).digest("hex")}"`;
  const decisions = new Map([[createHash("sha256").update(String(process.env.TOKEN)).digest("hex"), "allow"]]);
  let pending = [];
  const flush = () => {
    const text = pending.join("");
    pending = [];
    process.stdout.write(text);
  };
  const route = "/v1/namespaces/:namespace/artifacts/*";
  return (request, response) => {
    // Unauthenticated, as the artifact server's own: the harness waits for it.
    if (request.url === "/healthz") {
      response.writeHead(200, { "Content-Length": "0" });
      response.end();
      return;
    }
    const started = performance.now();
    const token = (request.headers.authorization ?? "").slice("Bearer ".length);
    if (decisions.get(createHash("sha256").update(token).digest("hex")) !== "allow") {
      response.writeHead(401, { "Content-Length": "0" });
      response.end();
      return;
    }
    const stat = lstatSync(file, { bigint: true, throwIfNoEntry: false });
    if (stat === undefined) {
      response.writeHead(404, { "Content-Length": "0" });
      response.end();
      return;
    }
    response.writeHead(200, {
      "Content-Type": "application/octet-stream",
      ETag: etag,
      "Last-Modified": stat.mtime.toUTCString(),
      "Content-Length": body.length,
    });
    response.end(body);
    response.once("close", () => {
      const seconds = (performance.now() - started) / 1000;
      requests.inc({ route, method: request.method, status: "200" });
      duration.observe({ route, method: request.method }, seconds);
      const line = { level: "info", time: new Date().toISOString(), method: request.method, route, status: 200, bytesOut: body.length, durationMs: seconds * 1000, msg: "request" };
      if (pending.push(`${JSON.stringify(line)}\n`) === 1) setImmediate(flush);
    });
  };
}

const contract = await contractWork();
const server = http.createServer((request, response) => {
  if (contract !== undefined) return contract(request, response);
  if (mode === "fixed") {
    response.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
    response.end(body);
    return;
  }
  request.on("data", () => {});
  request.on("end", () => {
    response.writeHead(request.method === "PUT" ? 201 : 200, { "Content-Length": "0" });
    response.end();
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.once("SIGTERM", () => server.close(() => process.exit(0)));
