// Process entry point: the only file that touches the process (signals, exit codes).
import { serve } from "@hono/node-server";
import { createApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";

try {
  const config = loadConfig();
  const app = createApp(config);
  serve({ fetch: app.fetch, port: config.port, hostname: config.host });
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${JSON.stringify({ level: "fatal", msg: error.message })}\n`);
    process.exit(2);
  }
  throw error;
}
