// A server process: the runtime (runtime.ts: every process-wide resource, made here once), the listening
// sockets, signals and graceful shutdown. The entry point (main.ts) loads this module once it has the
// configuration and knows this process serves.
import type { Server } from "node:http";
import { Registry } from "prom-client";
import { assemble } from "./assemble.js";
import { ConfigError, type Config } from "./config.js";
import { listen as listenOn } from "./http/listener.js";
import { exitFatal as fatal, type Logger } from "./log.js";
import { joinServerProcesses, serverProcessIndex } from "./processes.js";
import { createRuntime, type Runtime } from "./runtime.js";
import type { ArtifactStore } from "./storage/store.js";
import { VERSION } from "./version.js";

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  /** The S3-compatible listener, when enabled. */
  readonly s3Server: Server | undefined;
  readonly s3Port: number | undefined;
  /** The store both listeners serve (tests read its usage accounting). */
  readonly store: ArtifactStore;
  /** Fails readiness, serves new requests for the shutdown delay, then stops accepting and drains (drain()). */
  shutdown(): Promise<void>;
}

/** `runtime`: made by main(); tests starting several servers in one process get a new one per server. */
export async function startServer(config: Config, logger: Logger, runtime: Runtime = createRuntime({ logger })): Promise<RunningServer> {
  const { app, s3App, jobs, store, lifecycle } = await assemble(config, logger, { runtime });

  if (config.authMode === "none") {
    logger.warn(
      "AUTH_MODE=none: EVERY REQUEST IS ALLOWED WITHOUT AUTHENTICATION OR AUTHORIZATION. Use this only on a workstation, never in a cluster.",
    );
  }

  const listen = async (fetch: typeof app.fetch, port: number): Promise<{ server: Server; port: number }> => {
    const server = await listenOn(fetch, { port, host: config.host, logger });
    // Whole-request deadlines would cut off large uploads; an idle timeout catches slow and stalled clients.
    server.requestTimeout = 0;
    server.headersTimeout = Math.min(60_000, config.idleTimeoutMs + 1000);
    server.setTimeout(config.idleTimeoutMs);
    const address = server.address();
    return { server, port: typeof address === "object" && address !== null ? address.port : port };
  };
  const { server, port } = await listen(app.fetch, config.port);
  const s3 = s3App === undefined ? undefined : await listen(s3App.fetch, config.s3.port);
  if (s3 !== undefined && config.authMode === "none" && config.s3.staticKey === undefined && config.s3.masterKey === undefined) {
    logger.warn("S3 API without S3_ACCESS_KEY/S3_SECRET_KEY under AUTH_MODE=none: ANY OR NO SIGNATURE IS ACCEPTED. Use this only on a workstation.");
  }
  const servers = s3 === undefined ? [server] : [server, s3.server];
  if (s3 !== undefined) lifecycle.s3Listening = () => s3.server.listening;

  // Usage per namespace for metrics and quotas, measured in the background so start-up stays fast.
  void (async () => {
    for (const namespace of await store.namespaces()) await store.usage.get(namespace);
  })().catch((error: unknown) => logger.warn("could not measure namespace usage", { error: String(error) }));
  jobs.start();

  logger.info("listening", {
    version: VERSION,
    host: config.host,
    port,
    s3Port: s3?.port,
    root: config.artifactsRoot,
    authMode: config.authMode,
    scopeNamespace: config.scopeNamespace,
    node: config.nodeName || undefined,
    limits: {
      maxUploadBytes: config.maxUploadBytes,
      maxArchiveExpandedBytes: config.maxArchiveExpandedBytes,
      minFreeBytes: config.minFreeBytes,
      namespaceQuotaBytes: config.namespaceQuotaBytes,
    },
  });

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = () =>
    (shutdownPromise ??= (async () => {
      lifecycle.shuttingDown = true;
      // Background jobs stop at their next step while the listeners drain.
      await Promise.all([jobs.stop(), drain(servers, config, logger)]);
      await store.close();
      await runtime.stop();
      logger.info("stopped");
    })());
  return { server, port, s3Server: s3?.server, s3Port: s3?.port, store, shutdown };
}

/**
 * Shutdown after SIGTERM, readiness already failing. A terminating pod leaves its Services' endpoints
 * asynchronously: for a few seconds kube-proxy, ingress controllers and meshes still send it new
 * connections, so these are served for the shutdown delay. Then every listener closes and in-flight
 * requests get the grace period before the remaining connections are closed. Takes every listener the
 * process has, so all of them stay open during the delay and drain together.
 */
async function drain(servers: readonly Server[], config: Pick<Config, "shutdownDelayMs" | "shutdownGraceMs">, logger: Logger): Promise<void> {
  if (config.shutdownDelayMs > 0) {
    logger.info("shutting down: not ready, still serving new requests until load balancers have noticed", {
      delaySeconds: config.shutdownDelayMs / 1000,
    });
    await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
  }
  logger.info("shutting down: refusing new connections, finishing in-flight requests", {
    graceSeconds: config.shutdownGraceMs / 1000,
  });
  const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  for (const server of servers) server.closeIdleConnections();
  const graceOver = new Promise<"timeout">((resolve) => setTimeout(resolve, config.shutdownGraceMs, "timeout").unref());
  if ((await Promise.race([closed, graceOver])) === "timeout") {
    logger.warn("grace period over: closing the remaining connections");
    for (const server of servers) server.closeAllConnections();
    await closed;
  }
}

/** A socket that cannot be opened is a configuration problem too: what to say about it, if it is one. */
function listenFailure(error: unknown, config: Config): string | undefined {
  const { code, port, address } = error as NodeJS.ErrnoException & { port?: number; address?: string };
  if (code !== "EADDRINUSE" && code !== "EACCES" && code !== "EADDRNOTAVAIL") return undefined;
  const variable = config.s3.enabled && port === config.s3.port && port !== config.port ? "S3_PORT" : "PORT";
  const where = `${address ?? config.host}:${port ?? ""}`;
  if (code === "EADDRINUSE") return `${variable}=${port}: ${where} is already in use`;
  if (code === "EACCES") return `${variable}=${port}: ${where} may not be opened by this user (ports below 1024 need a privilege)`;
  return `HOST=${config.host}: ${where} is not an address of this machine`;
}

/** Serves until a signal ends it: what the entry point (main.ts) runs in a process that serves. */
export async function serve(config: Config, logger: Logger): Promise<void> {
  // One of several server processes (processes.ts), or the only one.
  const index = serverProcessIndex();
  const group = index === undefined ? undefined : joinServerProcesses(new Registry());
  const runtime = createRuntime({
    logger,
    sweepsEarlierStartsOnHost: index === undefined || index === 1,
    onlyProcessOnHost: index === undefined,
    ...(group && { metrics: group }),
  });
  let running: RunningServer;
  try {
    running = await startServer(config, logger, runtime);
  } catch (error) {
    // The volume or the Kubernetes credentials, found unusable while starting (store, authorizer).
    if (error instanceof ConfigError) fatal(error.message);
    const failure = listenFailure(error, config);
    if (failure !== undefined) fatal(failure);
    logger.error("could not start", { error: String(error) });
    process.exit(1);
  }
  group?.started();
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info("signal received", { signal });
    running.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error("shutdown failed", { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
}
