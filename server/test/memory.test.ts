// Bounded memory: 256 MiB through PUT, GET, KFP :read and a directory download (and a 50 MiB directory
// through KFP :read) while the
// server's RSS is sampled from /proc. A server that buffered a body or a file would grow by ≥ 256 MiB;
// the bound below leaves room for the runtime's own noise and nothing more. Sizes are printed so a
// reader can see the margins (the benchmark measures 1 GiB transfers).
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifactUrl, startChildServer, tempDir, within, type ChildServer } from "./support/harness.js";

const MiB = 1 << 20;
const TOTAL = 256 * MiB;
const MAX_GROWTH = 128 * MiB;
const DIRECTORY_READ_MAX_GROWTH = 48 * MiB;
let server: ChildServer;

async function rss(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kib) * 1024;
}

/** Runs `transfer` while sampling the server's RSS; returns growth over the RSS just before. */
async function peakGrowth(transfer: () => Promise<void>): Promise<number> {
  const pid = server.child.pid ?? 0;
  const baseline = await rss(pid);
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rss(pid));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await within(120_000, transfer(), "transfer");
  } finally {
    sampling = false;
    await sampler;
  }
  return peak - baseline;
}

/** Streams `total` bytes (a repeated random MiB) as a PUT or POST body. */
function send(url: string, method: string, total: number): Promise<number> {
  const block = randomBytes(MiB);
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers: { "Content-Length": String(total) } });
    request.on("response", (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("error", reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += MiB;
        if (!request.write(block)) return void request.once("drain", pump);
      }
      request.end();
    };
    pump();
  });
}

/** Reads a response to the end, keeping only a byte count. */
function receive(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let bytes = 0;
        response.on("data", (chunk: Buffer) => (bytes += chunk.length));
        response.on("end", () => resolve(bytes));
      })
      .on("error", reject);
  });
}

beforeAll(async () => {
  server = await startChildServer({ ARTIFACTS_ROOT: await tempDir("memory"), FSYNC: "false" });
});
afterAll(() => {
  server.child.kill("SIGKILL");
});

// Each test moves 256 MiB (the directory download also gzips it on one core): well past vitest's default
// 30 s on a loaded two-core machine. The bound is on memory; the time only has to be finite.
describe("memory stays bounded with 256 MiB transfers", { timeout: 180_000 }, () => {
  const url = () => artifactUrl(server.url, "team-a", "big.bin");

  it("PUT", async () => {
    let status = 0;
    const growth = await peakGrowth(async () => {
      status = await send(url(), "PUT", TOTAL);
    });
    console.log(`PUT 256 MiB: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(status).toBe(201);
    expect(growth).toBeLessThan(MAX_GROWTH);
  });

  it("GET", async () => {
    let bytes = 0;
    const growth = await peakGrowth(async () => {
      bytes = await receive(url());
    });
    console.log(`GET 256 MiB: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(bytes).toBe(TOTAL);
    expect(growth).toBeLessThan(MAX_GROWTH);
  });

  it("KFP :read (base64 JSON)", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const base = `${server.url}/apis/v2beta1/runs/${run}/nodes/n/artifacts/big`;
    expect(await send(`${base}:write?namespace=team-a&pipeline=p`, "POST", TOTAL)).toBe(200);
    let bytes = 0;
    const growth = await peakGrowth(async () => {
      bytes = await receive(`${base}:read`);
    });
    console.log(`:read 256 MiB: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(bytes).toBe('{"data":""}'.length + 4 * Math.ceil(TOTAL / 3));
    expect(growth).toBeLessThan(MAX_GROWTH);
  });

  it("KFP :read of a 50 MiB directory (one object per file, base64 of its tar.gz)", async () => {
    const run = `run-${randomBytes(4).toString("hex")}`;
    const base = `${server.url}/apis/v2beta1/runs/${run}/nodes/n/artifacts`;
    for (let i = 0; i < 50; i += 1) expect(await send(`${base}/dataset%2Fpart-${i}.bin:write?namespace=team-a&pipeline=p`, "POST", MiB)).toBe(200);
    let bytes = 0;
    const growth = await peakGrowth(async () => {
      bytes = await receive(`${base}/dataset:read`);
    });
    console.log(`:read of a 50 MiB directory (${(bytes / MiB).toFixed(1)} MiB of base64 JSON): RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    // Random data barely compresses: all of it went through, as base64 (4/3).
    expect(bytes).toBeGreaterThan((50 * MiB * 4) / 3);
    // Holding the archive or its base64 would take at least 50 MiB plus 67 MiB.
    expect(growth).toBeLessThan(DIRECTORY_READ_MAX_GROWTH);
  });

  it("directory download (?archive=tar.gz) of 64 × 4 MiB", async () => {
    for (let i = 0; i < 64; i += 1) {
      expect(await send(artifactUrl(server.url, "team-a", `dir/part-${i}.bin`), "PUT", 4 * MiB)).toBe(201);
    }
    let bytes = 0;
    const growth = await peakGrowth(async () => {
      bytes = await receive(`${artifactUrl(server.url, "team-a", "dir")}?archive=tar.gz`);
    });
    console.log(`directory download 256 MiB (${(bytes / MiB).toFixed(1)} MiB gzip): RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(bytes).toBeGreaterThan(TOTAL / 2); // random data barely compresses: it really streamed
    expect(growth).toBeLessThan(MAX_GROWTH);
  });
});
