// Claims on a multipart upload's staged object (multipart.ts), kept as files in the upload's directory
// so that every server on the volume sees them: one while a part is being written into the object, one
// while a completion assembles it. A claim is taken by creating its file exclusively (O_EXCL: one holder,
// even across servers sharing the volume), names the server start that holds it, is kept fresh while
// held, and counts as abandoned (its server died with it) once it has not been refreshed for
// CLAIM_ABANDONED_MS — or at once when it names another start on this host and this server is the only
// process there, so that a restarted server does not wait out the claims its previous start left.
import fs from "node:fs/promises";
import path from "node:path";

/** How often a held claim's modification time is renewed. */
const CLAIM_REFRESH_MS = 5_000;
/** A claim not renewed for this long was left by a server that stopped while holding it. */
export const CLAIM_ABANDONED_MS = 30_000;
/** How often a waiter looks again at the claims it waits for. */
const CLAIM_POLL_MS = 10;

export interface Claim {
  /** Gives the claim up; never rejects. */
  release(): Promise<void>;
}

/** Who takes claims: this server start, and which holders are known to have stopped. */
export interface Claimant {
  /** This start's identity, written into its claims. */
  readonly holder: string;
  /** Whether the start named `holder` has stopped (an earlier start on this host); false when unknown. */
  hasStopped(holder: string): boolean;
}

/** Takes the claim at `file` for `claimant`, or resolves undefined when someone holds it. */
export async function tryClaim(file: string, claimant: Claimant): Promise<Claim | undefined> {
  try {
    await fs.writeFile(file, claimant.holder, { flag: "wx", mode: 0o640 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw error;
  }
  const refresh = setInterval(() => {
    const now = new Date();
    fs.utimes(file, now, now).catch(() => {});
  }, CLAIM_REFRESH_MS);
  refresh.unref();
  return {
    async release() {
      clearInterval(refresh);
      await fs.rm(file, { force: true }).catch(() => {});
    },
  };
}

/**
 * Whether the claim at `file` is held by no live server: gone, not renewed for CLAIM_ABANDONED_MS, or
 * naming a start `claimant` knows has stopped.
 */
export async function isAbandoned(file: string, claimant: Claimant, now = Date.now()): Promise<boolean> {
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat === undefined || now - stat.mtimeMs > CLAIM_ABANDONED_MS) return true;
  const holder = await fs.readFile(file, "utf8").catch(() => "");
  return holder !== "" && claimant.hasStopped(holder);
}

/**
 * Waits until `dir` holds no claim whose name `matches`, removing abandoned ones as it finds them;
 * resolves false when `timeoutMs` passed first.
 */
export async function waitForClaims(dir: string, matches: (name: string) => boolean, claimant: Claimant, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let live = 0;
    for (const name of (await fs.readdir(dir)).filter(matches)) {
      const file = path.join(dir, name);
      if (await isAbandoned(file, claimant)) await fs.rm(file, { force: true });
      else live += 1;
    }
    if (live === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
  }
}
