// Process entry point (the bundle server/dist/server.mjs, the image's command): the configuration from
// the environment, then either the primary of several server processes (processes.ts) or a server
// (server.ts). The server's modules load only past that choice: esbuild evaluates a module imported with
// import() when it is imported, so a primary never holds the server's code and data (the Kubernetes
// client, the routes, the storage: about 40 MB of its resident memory).
import cluster from "node:cluster";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createLogger, exitFatal } from "./log.js";
import { superviseServerProcesses } from "./processes.js";

async function main(): Promise<void> {
  if (process.argv[2] === "s3-credentials") {
    const { runCredentialsCommand } = await import("./s3/credentials-command.js");
    process.exitCode = runCredentialsCommand(process.argv.slice(3), process.env, (text) => process.stdout.write(text), (text) => process.stderr.write(text));
    return;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitFatal(error.message);
    throw error;
  }
  const logger = createLogger(config.logLevel);
  process.on("unhandledRejection", (reason) => logger.error("unhandled rejection", { error: String(reason) }));
  if (config.processes > 1 && cluster.isPrimary) {
    process.exit(await superviseServerProcesses(config.processes, logger));
  }
  const { serve } = await import("./server.js");
  await serve(config, logger);
}

void main();
