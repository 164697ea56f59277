// Builds the server bundle once before the suites: the child-process tests (SIGKILL, ENOSPC, SIGTERM)
// run the same file the image ships. Gives the run a temporary directory of its own and removes it at
// the end: the suites write gigabytes of volumes, uploads and clusters' files under os.tmpdir(), and a
// machine that runs them day after day (CI runs on a developer's machine) would otherwise fill its disk.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export default function setup(): () => void {
  const root = path.resolve(import.meta.dirname, "../../..");
  execFileSync(process.execPath, [path.join(root, "scripts/build.mjs")], { cwd: root, stdio: "inherit" });
  // Test workers start after this and inherit the environment: their os.tmpdir() is this directory.
  const runDir = mkdtempSync(path.join(os.tmpdir(), "kfp-artifacts-tests-"));
  // As /tmp itself: tests run children as other users (the image's UID), which must reach their directories.
  chmodSync(runDir, 0o1777);
  process.env.TMPDIR = runDir;
  return () => {
    try {
      rmSync(runDir, { recursive: true, force: true });
    } catch (error) {
      // A file a test left unremovable must not turn a passing run into a failing one; say where it is.
      process.stderr.write(`could not remove the tests' temporary directory ${runDir}: ${String(error)}\n`);
    }
  };
}
