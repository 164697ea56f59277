// Log lines reach standard output once per turn of the event loop, in order, and none is lost.
import { describe, expect, it } from "vitest";
import { createLogger, linesPerTurn } from "../../src/log.js";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("linesPerTurn", () => {
  it("writes all the lines of one turn with one write, in order, after the turn", async () => {
    const writes: string[] = [];
    const lines = linesPerTurn((text) => writes.push(text));
    lines.write("a\n");
    lines.write("b\n");
    lines.write("c\n");
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n"]);
    lines.write("d\n");
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n", "d\n"]);
  });

  it("flush writes what is pending at once (the exit handler's job), and nothing twice", async () => {
    const writes: string[] = [];
    const lines = linesPerTurn((text) => writes.push(text));
    lines.write("last words\n");
    lines.flush();
    expect(writes).toEqual(["last words\n"]);
    await nextTurn();
    lines.flush();
    expect(writes).toEqual(["last words\n"]);
  });

  it("carries JSON lines from a logger unchanged", async () => {
    const writes: string[] = [];
    const lines = linesPerTurn((text) => writes.push(text));
    const logger = createLogger("info", lines.write);
    logger.debug("filtered out");
    logger.info("one", { n: 1 });
    logger.warn("two");
    await nextTurn();
    const parsed = writes.join("").trim().split("\n").map((line) => JSON.parse(line) as { msg: string; level: string; n?: number });
    expect(parsed.map((line) => [line.level, line.msg, line.n])).toEqual([
      ["info", "one", 1],
      ["warn", "two", undefined],
    ]);
  });
});

describe("createLogger", () => {
  const logged = async (log: (logger: ReturnType<typeof createLogger>) => void) => {
    const lines: string[] = [];
    log(createLogger("info", (line) => lines.push(line)));
    await nextTurn();
    return lines.join("").trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  it("writes time, level, message and fields as one JSON object per line", async () => {
    const [line] = await logged((logger) => logger.info("started", { port: 8080 }));
    expect(line).toMatchObject({ level: "info", msg: "started", port: 8080 });
    expect(new Date(String(line?.time)).toISOString()).toBe(line?.time);
  });

  it("keeps an Error's type, message, stack and causes (JSON.stringify would write {})", async () => {
    const cause = Object.assign(new Error("EACCES on the volume"), { code: "EACCES" });
    const [line] = await logged((logger) => logger.error("unhandled error", { error: new TypeError("commit failed", { cause }) }));
    expect(line?.error).toMatchObject({ type: "TypeError", message: "commit failed", cause: { message: "EACCES on the volume", code: "EACCES" } });
    expect((line?.error as { stack: string }).stack).toMatch(/log\.test\.ts/);
  });

  it("leaves an error given as text as it is", async () => {
    const [line] = await logged((logger) => logger.warn("volume fault", { error: "ENOSPC" }));
    expect(line?.error).toBe("ENOSPC");
  });

  it("redacts credentials by field name, at the top level and in headers and credentials, and keeps the rest", async () => {
    const [line] = await logged((logger) =>
      logger.info("request", {
        authorization: "Bearer eyJhbGciOi",
        headers: { authorization: "AWS4-HMAC-SHA256 Credential=minio/…", "x-amz-security-token": "FwoGZXIvYXdzE", host: "kfp-artifacts" },
        credentials: { secretAccessKey: "minio123-secret", accessKeyId: "minio" },
        token: "sa-token",
      }),
    );
    const text = JSON.stringify(line);
    for (const secret of ["eyJhbGciOi", "Credential=minio", "FwoGZXIvYXdzE", "minio123-secret", "sa-token"]) expect(text).not.toContain(secret);
    expect(line).toMatchObject({
      authorization: "[redacted]",
      headers: { authorization: "[redacted]", "x-amz-security-token": "[redacted]", host: "kfp-artifacts" },
      credentials: { secretAccessKey: "[redacted]", accessKeyId: "minio" },
      token: "[redacted]",
    });
  });

  it("filters below its level", () => {
    const lines: string[] = [];
    const logger = createLogger("warn", (line) => lines.push(line));
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toEqual(["w"]);
  });
});

describe("Logger.request, the access log's line", () => {
  const raw = (level: "debug" | "info" | "warn" | "error", log: (logger: ReturnType<typeof createLogger>) => void) => {
    const lines: string[] = [];
    log(createLogger(level, (line) => lines.push(line)));
    return lines;
  };

  it("is the object pino writes for the same fields: level, time, the fields in order, msg, one line each", () => {
    const fields = { method: "GET", route: "/v1/namespaces/:namespace/artifacts/*", namespace: "team-a", key: "a/b.bin", status: 200, bytesIn: 0, bytesOut: 4400, durationMs: 0.3, groups: ["system:authenticated"], aborted: true };
    const [fast, viaPino] = raw("info", (logger) => {
      logger.request("info", fields);
      logger.info("request", fields);
    });
    expect(fast?.endsWith("}\n")).toBe(true);
    expect(fast?.split("\n")).toHaveLength(2);
    const parse = (line: string | undefined) => JSON.parse(line ?? "") as Record<string, unknown>;
    const { time: fastTime, ...fastRest } = parse(fast);
    const { time: pinoTime, ...pinoRest } = parse(viaPino);
    expect(Object.keys(parse(fast))).toEqual(Object.keys(parse(viaPino)));
    expect(fastRest).toEqual(pinoRest);
    expect(fastRest).toMatchObject({ level: "info", msg: "request", status: 200, groups: ["system:authenticated"] });
    expect(new Date(String(fastTime)).toISOString()).toBe(fastTime);
    expect(Math.abs(Date.parse(String(fastTime)) - Date.parse(String(pinoTime)))).toBeLessThan(1000);
  });

  it("leaves out undefined fields, writes a line with none, and escapes whatever a key holds", () => {
    const hostile = 'quote " backslash \\ newline \n tab \t nul \u0000 "msg":"forged"';
    const lines = raw("info", (logger) => {
      logger.request("warn", { key: hostile, user: undefined, status: 403 });
      logger.request("info", {});
    });
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.slice(0, -1)).not.toContain("\n");
    const [denied, empty] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(denied).toEqual({ level: "warn", time: denied?.time, key: hostile, status: 403, msg: "request" });
    expect(Object.keys(empty ?? {})).toEqual(["level", "time", "msg"]);
  });

  it("honours the logger's level, as the other methods do", () => {
    const lines = raw("warn", (logger) => {
      logger.request("debug", { route: "/healthz" });
      logger.request("info", { route: "/v1" });
      logger.request("warn", { route: "/denied" });
      logger.request("error", { route: "/failed" });
    });
    expect(lines.map((line) => (JSON.parse(line) as { route: string }).route)).toEqual(["/denied", "/failed"]);
  });
});
