// The Lease as it goes on the wire: acquireTime and renewTime are MicroTime, which the API server parses
// with exactly six fractional digits; three (Date#toISOString) is a 400 and no manager ever leads.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tryAcquire, type LeaderOptions } from "../../src/manager/leader.js";
import { createLogger } from "../../src/log.js";

const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface Recorded {
  method: string;
  body: { spec?: { acquireTime?: unknown; renewTime?: unknown } } | undefined;
}

const readBody = (request: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => resolve(text));
  });

/** A fake API server holding one Lease (or none), recording what the client sends. */
let server: Server;
let stored: Record<string, unknown> | undefined;
const recorded: Recorded[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    void readBody(request).then((text) => {
      const body = text ? (JSON.parse(text) as Recorded["body"] & Record<string, unknown>) : undefined;
      recorded.push({ method: request.method ?? "", body });
      const json = (status: number, value: unknown) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (request.method === "GET") {
        if (stored === undefined) json(404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 });
        else json(200, stored);
        return;
      }
      // What the real API server does with a MicroTime of the wrong width.
      for (const field of ["acquireTime", "renewTime"] as const) {
        const value = body?.spec?.[field];
        if (typeof value !== "string" || !MICRO_TIME.test(value)) {
          json(400, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "BadRequest", code: 400, message: `cannot parse ${String(value)}` });
          return;
        }
      }
      stored = { ...body, metadata: { ...(body as { metadata: object }).metadata, resourceVersion: String(recorded.length) } };
      json(request.method === "POST" ? 201 : 200, stored);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function options(identity: string): LeaderOptions {
  const kubeConfig = new KubeConfig();
  const { port } = server.address() as AddressInfo;
  kubeConfig.loadFromOptions({
    clusters: [{ name: "fake", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "fake", token: "t" }],
    contexts: [{ name: "fake", cluster: "fake", user: "fake" }],
    currentContext: "fake",
  });
  return {
    api: kubeConfig.makeApiClient(CoordinationV1Api),
    namespace: "kubeflow",
    name: "kfp-artifacts-manager",
    identity,
    leaseSeconds: 15,
    logger: createLogger("error"),
    onChange: () => undefined,
  };
}

describe("tryAcquire on the wire", () => {
  it("creates, renews and takes over the Lease with six-digit MicroTimes", async () => {
    const start = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 549));
    expect(await tryAcquire(options("a"), start)).toBe(true);
    expect(await tryAcquire(options("a"), new Date(start.getTime() + 5_000))).toBe(true);
    // Another replica cannot take a lease that is still valid, and takes it once it expired.
    expect(await tryAcquire(options("b"), new Date(start.getTime() + 10_000))).toBe(false);
    expect(await tryAcquire(options("b"), new Date(start.getTime() + 30_000))).toBe(true);
    const writes = recorded.filter((call) => call.method === "POST" || call.method === "PUT");
    expect(writes.map((call) => call.method)).toEqual(["POST", "PUT", "PUT"]);
    for (const call of writes) {
      expect(call.body?.spec?.renewTime).toMatch(MICRO_TIME);
      expect(call.body?.spec?.acquireTime).toMatch(MICRO_TIME);
    }
    expect(writes[0]?.body?.spec?.renewTime).toBe("2026-01-01T00:00:00.549000Z");
    // A renewal keeps the holder's acquireTime; a takeover sets a new one.
    expect(writes[1]?.body?.spec?.acquireTime).toBe("2026-01-01T00:00:00.549000Z");
    expect(writes[2]?.body?.spec?.acquireTime).toBe("2026-01-01T00:00:30.549000Z");
  });
});
