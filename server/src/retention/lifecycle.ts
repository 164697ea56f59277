// S3 bucket lifecycle configurations (Put/Get/DeleteBucketLifecycleConfiguration), the subset Kubeflow's
// profile controller sets from ARTIFACT_RETENTION_DAYS: rules with a Prefix (or Filter.Prefix),
// Expiration.Days and AbortIncompleteMultipartUpload.DaysAfterInitiation. Kept per bucket on the volume
// (so every replica applies the same) and translated into retention rules of namespaces: on Kubeflow's
// bucket, `private-artifacts` covers every namespace and `private-artifacts/<ns>/<rest>` the prefix
// `<rest>` of `<ns>`; elsewhere the bucket is the namespace.
import fs from "node:fs/promises";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { RetentionRule } from "../config.js";

export interface LifecycleRule {
  readonly id: string;
  readonly enabled: boolean;
  readonly prefix: string;
  /** Undefined: no expiration in this rule. */
  readonly expirationDays: number | undefined;
  readonly abortMultipartDays: number | undefined;
}

export interface LifecycleScope {
  readonly kubeflowBucket: string;
  readonly systemNamespace: string;
  /** The namespaces on the volume, for a rule that covers all of them. */
  readonly namespaces: () => readonly string[];
}

const PRIVATE = "private-artifacts";

export class LifecycleStore {
  #cache = new Map<string, readonly LifecycleRule[]>();

  constructor(private readonly dir: string) {}

  /** Reads every stored configuration once (at start); later changes come through put/delete. */
  async load(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const loaded = new Map<string, readonly LifecycleRule[]>();
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith(".json")) continue;
      try {
        loaded.set(name.slice(0, -".json".length), JSON.parse(await fs.readFile(path.join(this.dir, name), "utf8")) as LifecycleRule[]);
      } catch {
        // A torn file (crash mid-write is impossible: written by rename) or a foreign one: ignored.
      }
    }
    this.#cache = loaded;
  }

  get(bucket: string): readonly LifecycleRule[] | undefined {
    return this.#cache.get(bucket);
  }

  async put(bucket: string, rules: readonly LifecycleRule[]): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const temp = path.join(this.dir, `.${bucket}.${randomUUID()}.tmp`);
    await fs.writeFile(temp, JSON.stringify(rules), { mode: 0o640 });
    await fs.rename(temp, path.join(this.dir, `${bucket}.json`));
    this.#cache.set(bucket, rules);
  }

  async delete(bucket: string): Promise<void> {
    await fs.rm(path.join(this.dir, `${bucket}.json`), { force: true });
    this.#cache.delete(bucket);
  }

  /** Every enabled expiration as a retention rule of a namespace. */
  retentionRules(scope: LifecycleScope): RetentionRule[] {
    const rules: RetentionRule[] = [];
    for (const [bucket, lifecycle] of this.#cache) {
      for (const rule of lifecycle) {
        if (!rule.enabled || rule.expirationDays === undefined) continue;
        for (const target of targetsOf(bucket, rule.prefix, scope)) rules.push({ ...target, days: rule.expirationDays });
      }
    }
    return rules;
  }

  /** The shortest AbortIncompleteMultipartUpload of any enabled rule, in days (undefined: none). */
  abortMultipartDays(): number | undefined {
    let shortest: number | undefined;
    for (const lifecycle of this.#cache.values()) {
      for (const rule of lifecycle) {
        if (rule.enabled && rule.abortMultipartDays !== undefined) shortest = Math.min(shortest ?? Infinity, rule.abortMultipartDays);
      }
    }
    return shortest;
  }
}

/**
 * The namespaces and key prefixes an S3 prefix of a bucket covers. On Kubeflow's bucket the system
 * namespace's own keys (pipeline specs, the API server's files) are outside `private-artifacts/`: a rule
 * for the profiles' artifacts never reaches them, even though the system namespace is on the volume too.
 */
function targetsOf(bucket: string, prefix: string, scope: LifecycleScope): Array<{ namespace: string; prefix: string }> {
  if (bucket !== scope.kubeflowBucket) return [{ namespace: bucket, prefix }];
  const profiles = () => scope.namespaces().filter((namespace) => namespace !== scope.systemNamespace);
  if (prefix === PRIVATE || prefix === `${PRIVATE}/`) return profiles().map((namespace) => ({ namespace, prefix: "" }));
  if (prefix.startsWith(`${PRIVATE}/`)) {
    const rest = prefix.slice(PRIVATE.length + 1);
    const slash = rest.indexOf("/");
    // A prefix ending inside a namespace name covers every namespace that starts so.
    if (slash === -1) return profiles().filter((namespace) => namespace.startsWith(rest)).map((namespace) => ({ namespace, prefix: "" }));
    return [{ namespace: rest.slice(0, slash), prefix: rest.slice(slash + 1) }];
  }
  // A prefix that `private-artifacts` itself starts with (including the whole bucket) covers the
  // profiles' artifacts and the system namespace's keys under that prefix.
  if (PRIVATE.startsWith(prefix)) return [...profiles().map((namespace) => ({ namespace, prefix: "" })), { namespace: scope.systemNamespace, prefix }];
  return [{ namespace: scope.systemNamespace, prefix }];
}
