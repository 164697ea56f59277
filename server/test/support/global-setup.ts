// Builds the server bundle once before the suites: the child-process tests (SIGKILL, ENOSPC, SIGTERM)
// run the same file the image ships.
import { execFileSync } from "node:child_process";
import path from "node:path";

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, "../../..");
  execFileSync(process.execPath, [path.join(root, "scripts/build.mjs")], { cwd: root, stdio: "inherit" });
}
