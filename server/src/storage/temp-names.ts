// Names of temporary files on the volume. Every temporary file of a process starts with the host name
// and an identity drawn once per start, so a sweep can tell this process's live work from what an
// earlier start on this host left, and both from a peer's on a shared volume. The identity belongs to
// the runtime (runtime.ts): two servers in one process are two starts, each sweeping only the other's
// leftovers as a peer's.
import { randomBytes, randomUUID } from "node:crypto";
import os from "node:os";
import path from "node:path";

/** A directory for temporary files, and new names in it that belong to this start. */
export interface Scratch {
  readonly dir: string;
  /** A new, unused path in `dir`; `kind` ends it, for whoever reads a listing of leftovers. */
  path(kind: string): string;
}

export class TempNames {
  /** What every temporary file made on this host starts with. */
  readonly hostPrefix: string;
  /**
   * What this start's temporary files start with: the host prefix, then the start's identity. Not the
   * PID: in a container every start is PID 1, and the leftovers of the previous PID 1 would look live for ever.
   */
  readonly ownPrefix: string;

  constructor(hostname: string = os.hostname(), startIdentity: string = randomBytes(8).toString("hex")) {
    this.hostPrefix = `${hostname.replace(/[^A-Za-z0-9_-]/g, "_")}.`;
    this.ownPrefix = `${this.hostPrefix}${startIdentity}.`;
  }

  /** A new temporary path of this start in `dir`. */
  path(dir: string, kind: string): string {
    return path.join(dir, `${this.ownPrefix}${randomUUID()}.${kind}`);
  }

  /** Temporary names in `dir`. */
  in(dir: string): Scratch {
    return { dir, path: (kind) => this.path(dir, kind) };
  }

  /** Whether a temporary entry's name is this start's own (live work, never a leftover). */
  isOwn(name: string): boolean {
    return name.startsWith(this.ownPrefix);
  }

  /** Whether a temporary entry's name was made on this host, by this start or an earlier one. */
  isThisHost(name: string): boolean {
    return name.startsWith(this.hostPrefix);
  }
}
