// createApp(config, deps): the whole HTTP surface as a pure Web-API Hono app, testable with app.request().
import { Hono } from "hono";
import type { Config } from "./config.js";

export function createApp(config: Config): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => c.json({ status: "ready", node: config.nodeName }));
  return app;
}
