// Quota across every server on one volume. Each process knows a namespace's usage from walking it once
// and from its own commits, so replicas sharing a ReadWriteMany claim (or a DaemonSet's pods sharing one)
// each enforced NAMESPACE_QUOTA_BYTES against their own view: N servers let a namespace store up to N
// times its quota, and one that had seen a peer's write but not its delete refused writes that fit.
//
// With a quota set, a commit or delete holds the namespace's lock on the volume, reads the usage the
// volume records for the namespace (its ledger), makes its change and records the new usage before
// letting go. The lock is a file created exclusively (open O_EXCL), which every process on the volume
// sees, NFS included; its holder touches it while working. A lock left by a holder that died — untouched
// for LOCK_STALE_MS — is broken, and the ledger with it, since the dead holder may have changed the
// namespace without recording it: the next holder measures the namespace again. Without a quota nothing
// here runs, and usage stays per process (it only feeds the usage metric).
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { HttpError, serviceUnavailable } from "../errors.js";
import type { Logger } from "../log.js";
import { KeyedMutex } from "./mutex.js";
import type { Scratch } from "./temp-names.js";

/** A lock untouched this long belongs to a holder that died (a live one touches it every LOCK_TOUCH_MS). */
export const LOCK_STALE_MS = 15_000;
const LOCK_TOUCH_MS = 3_000;
/** Longer than a stale lock takes to be broken, so a waiter gives up only when something is wrong. */
const LOCK_WAIT_MS = 2 * LOCK_STALE_MS;

/** What the store lets this module see of its per-process usage (usage.ts). */
export interface ProcessUsage {
  /** Usage as this process knows it; measures the namespace (a walk) when it does not. */
  getLocked(namespace: string): Promise<number>;
  add(namespace: string, delta: number): void;
}

export class SharedUsage {
  readonly #locksDir: string;
  readonly #ledgerDir: string;
  /** Holders in this process queue here, so only holders in different processes meet at the lock file. */
  readonly #local = new KeyedMutex();

  constructor(
    internalDir: string,
    private readonly scratch: Scratch,
    /** Who holds a lock, as its file says: this start's temporary-name prefix. */
    private readonly owner: string,
    private readonly usage: ProcessUsage,
    /** Walks the namespace: its usage when the volume has no trustworthy record of it. */
    private readonly measure: (namespace: string) => Promise<number>,
    private readonly logger: Logger,
  ) {
    this.#locksDir = path.join(internalDir, "locks");
    this.#ledgerDir = path.join(internalDir, "usage");
  }

  async init(): Promise<void> {
    await fs.mkdir(this.#locksDir, { recursive: true });
    await fs.mkdir(this.#ledgerDir, { recursive: true });
  }

  /**
   * Runs `change` holding the namespace's lock on the volume, with this process's usage of the
   * namespace set to what the volume records first, and the volume's record set to it afterwards.
   * `change` reads and changes usage through the store's usual calls (getLocked, add).
   */
  hold<T>(namespace: string, change: () => Promise<T>): Promise<T> {
    return this.#local.run(namespace, () => this.#holdOnVolume(namespace, change));
  }

  async #holdOnVolume<T>(namespace: string, change: () => Promise<T>): Promise<T> {
    const lock = await this.#acquire(namespace);
    const touch = setInterval(() => void fs.utimes(lock.file, new Date(), new Date()).catch(() => {}), LOCK_TOUCH_MS);
    touch.unref();
    try {
      const known = await this.usage.getLocked(namespace);
      const recorded = lock.brokeStale ? undefined : await this.#readLedger(namespace);
      this.usage.add(namespace, (recorded ?? (await this.measure(namespace))) - known);
      let result: T;
      try {
        result = await change();
      } catch (error) {
        // A refusal (quota, precondition, conflict) changed nothing. Anything else may have failed
        // half-way, after a change it did not count: the record goes, and the next holder measures.
        if (error instanceof HttpError) await this.#record(namespace);
        else await fs.rm(this.#ledgerPath(namespace), { force: true });
        throw error;
      }
      await this.#record(namespace);
      return result;
    } finally {
      clearInterval(touch);
      await this.#release(lock);
    }
  }

  /** The namespace's usage as the volume records it, read without the lock (an early refusal's estimate). */
  async peek(namespace: string): Promise<number | undefined> {
    return this.#readLedger(namespace);
  }

  #lockPath(namespace: string): string {
    return path.join(this.#locksDir, `${namespace}.lock`);
  }

  #ledgerPath(namespace: string): string {
    return path.join(this.#ledgerDir, `${namespace}.json`);
  }

  async #readLedger(namespace: string): Promise<number | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.#ledgerPath(namespace), "utf8")) as { bytes?: unknown };
      return typeof parsed.bytes === "number" && Number.isSafeInteger(parsed.bytes) && parsed.bytes >= 0 ? parsed.bytes : undefined;
    } catch {
      return undefined; // none yet, or torn by a crash: measured again
    }
  }

  /**
   * Records this process's usage of the namespace as the volume's. The change is made already: if the
   * record cannot be written (a full volume), the old one goes, so the next holder measures again.
   */
  async #record(namespace: string): Promise<void> {
    try {
      await this.#writeLedger(namespace, await this.usage.getLocked(namespace));
    } catch (error) {
      this.logger.warn("could not record a namespace's usage; it is measured again at its next change", { namespace, error: String(error) });
      await fs.rm(this.#ledgerPath(namespace), { force: true });
    }
  }

  async #writeLedger(namespace: string, bytes: number): Promise<void> {
    const temp = this.scratch.path("usage");
    try {
      await fs.writeFile(temp, JSON.stringify({ bytes }), { mode: 0o640 });
      await fs.rename(temp, this.#ledgerPath(namespace));
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
  }

  async #acquire(namespace: string): Promise<{ file: string; ino: number; brokeStale: boolean }> {
    const file = this.#lockPath(namespace);
    const owner = JSON.stringify({ owner: this.owner, pid: process.pid, since: new Date().toISOString() });
    const deadline = Date.now() + LOCK_WAIT_MS;
    let brokeStale = false;
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      try {
        const handle = await fs.open(file, "wx", 0o640);
        try {
          await handle.writeFile(owner);
          return { file, ino: (await handle.stat()).ino, brokeStale };
        } finally {
          await handle.close();
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      if (await this.#breakIfStale(namespace, file)) {
        brokeStale = true;
        continue;
      }
      if (Date.now() > deadline) throw serviceUnavailable("another server on this volume holds the namespace's quota lock; try again");
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /** Removes the lock if its holder stopped touching it; resolves whether it did. */
  async #breakIfStale(namespace: string, file: string): Promise<boolean> {
    const judged = await fs.lstat(file).catch(() => undefined);
    if (judged === undefined || Date.now() - judged.mtimeMs <= LOCK_STALE_MS) return false;
    // Renamed, not unlinked: of several waiters judging it stale at once, one takes it.
    const taken = path.join(this.#locksDir, `${namespace}.broken.${randomUUID()}`);
    try {
      await fs.rename(file, taken);
    } catch {
      return false;
    }
    const broken = await fs.lstat(taken);
    if (broken.ino !== judged.ino) {
      // A live holder's lock, created between the look and the rename: it goes back.
      await fs.link(taken, file).catch(() => {});
      await fs.rm(taken, { force: true });
      return false;
    }
    await fs.rm(taken, { force: true });
    this.logger.warn("broke a quota lock its holder left (it stopped without releasing it); the namespace's usage is measured again", { namespace });
    return true;
  }

  async #release(lock: { file: string; ino: number }): Promise<void> {
    // Still ours unless it was judged stale meanwhile (this process stalled longer than LOCK_STALE_MS).
    const current = await fs.lstat(lock.file).catch(() => undefined);
    if (current?.ino === lock.ino) await fs.rm(lock.file, { force: true });
  }
}
