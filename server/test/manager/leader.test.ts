// The Lease as it goes on the wire: acquireTime and renewTime are MicroTime, which the API server parses
// with exactly six fractional digits; three (Date#toISOString) is a 400 and no manager ever leads.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { releaseLease, runLeaderElection, tryAcquire, type LeaderOptions } from "../../src/manager/leader.js";
import { createLogger } from "../../src/log.js";

const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface Recorded {
  method: string;
  body: { spec?: { acquireTime?: unknown; renewTime?: unknown; holderIdentity?: unknown; leaseDurationSeconds?: unknown } } | undefined;
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

/** The stored Lease's holder, read through a function so no narrowing of `stored` applies. */
const holder = () => (stored as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity;

describe("releasing the Lease on a graceful stop", () => {
  it("the holder gives it up so another replica takes it at once; anyone else's lease is left alone", async () => {
    stored = undefined;
    const start = new Date(Date.UTC(2026, 0, 1, 0, 0, 0));
    expect(await tryAcquire(options("a"), start)).toBe(true);
    const before = recorded.length;
    // b holds nothing: it does not write.
    expect(await releaseLease(options("b"), new Date(start.getTime() + 1_000))).toBe(false);
    expect(recorded.slice(before).map((call) => call.method)).toEqual(["GET"]);
    expect(await releaseLease(options("a"), new Date(start.getTime() + 1_000))).toBe(true);
    const released = recorded.at(-1);
    expect(released?.method).toBe("PUT");
    expect(released?.body?.spec?.holderIdentity).toBeUndefined();
    expect(released?.body?.spec?.leaseDurationSeconds).toBe(1);
    // Two seconds later, well within a's 15 s: without the release b would wait for the lease to expire.
    expect(await tryAcquire(options("b"), new Date(start.getTime() + 2_000))).toBe(true);
    expect(await releaseLease(options("a"), new Date(start.getTime() + 3_000))).toBe(false);
    expect(holder()).toBe("b");
  });

  it("stop() waits for the work to finish, then releases the lease it holds", async () => {
    stored = undefined;
    const changes: boolean[] = [];
    const election = runLeaderElection({ ...options("c"), onChange: (leading) => changes.push(leading) });
    const deadline = Date.now() + 5_000;
    while (!changes.includes(true) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(changes).toEqual([true]);
    let workFinished = false;
    await election.stop(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Still held while the last reconcile finishes.
      expect(holder()).toBe("c");
      workFinished = true;
    });
    expect(workFinished).toBe(true);
    expect(holder()).toBeUndefined();
    expect(await tryAcquire(options("d"))).toBe(true);
  });
});
