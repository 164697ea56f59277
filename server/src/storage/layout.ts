// Where things live on the volume. Artifacts: <root>/<namespace>/<key>. Everything internal lives under
// <root>/.kfp-artifacts/, which no artifact key can reach: namespaces are DNS-1123 labels and cannot
// start with '.'.
import { createHash } from "node:crypto";
import path from "node:path";
import type { ArtifactKey } from "./names.js";
import type { Scratch, TempNames } from "./temp-names.js";

export const INTERNAL_DIR_NAME = ".kfp-artifacts";

export class VolumeLayout {
  readonly internalDir: string;
  /** Temporary uploads, archive extractions and directories being deleted; same filesystem as the artifacts. */
  readonly tmpDir: string;
  readonly metaDir: string;
  readonly runsDir: string;
  /** New temporary names in tmpDir, of this start. */
  readonly scratch: Scratch;

  constructor(
    readonly root: string,
    /** The start identity that names this process's temporary files (runtime.ts). */
    readonly tempNames: TempNames,
  ) {
    this.internalDir = path.join(root, INTERNAL_DIR_NAME);
    this.tmpDir = path.join(this.internalDir, "tmp");
    this.metaDir = path.join(this.internalDir, "meta");
    this.runsDir = path.join(this.internalDir, "runs");
    this.scratch = tempNames.in(this.tmpDir);
  }

  namespaceDir(namespace: string): string {
    return path.join(this.root, namespace);
  }

  artifactPath(namespace: string, key: ArtifactKey): string {
    return path.join(this.root, namespace, ...key.segments);
  }

  /** The sidecar that records the digest of the content at `key`; keyed by a hash so no key can collide. */
  metaPath(namespace: string, key: string): string {
    const digest = createHash("sha256").update(key).digest("hex");
    return path.join(this.metaDir, namespace, digest.slice(0, 2), `${digest}.json`);
  }
}
