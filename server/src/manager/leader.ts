// Leader election on a coordination.k8s.io Lease: one manager reconciles, the others wait. Optimistic
// concurrency (resourceVersion on replace) settles races; a leader that cannot renew in time stops leading.
import type { CoordinationV1Api, V1Lease } from "@kubernetes/client-node";
import { ApiException, V1MicroTime } from "@kubernetes/client-node";
import type { Logger } from "../log.js";

export interface LeaderOptions {
  readonly api: CoordinationV1Api;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseSeconds: number;
  readonly logger: Logger;
  onChange(leading: boolean): void;
}

const isCode = (error: unknown, code: number) => error instanceof ApiException && error.code === code;

/** Tries to take or renew the lease once; true when we hold it afterwards. */
export async function tryAcquire(options: LeaderOptions, now = new Date()): Promise<boolean> {
  const { api, namespace, name, identity, leaseSeconds } = options;
  let lease: V1Lease | undefined;
  try {
    lease = await api.readNamespacedLease({ name, namespace });
  } catch (error) {
    if (!isCode(error, 404)) throw error;
  }
  // acquireTime and renewTime are MicroTime: the API server accepts exactly six fractional digits, and a
  // plain Date serializes with three (toISOString), which it refuses with a 400 on every create and renew.
  const stamp = new V1MicroTime(now.getTime());
  const spec = { holderIdentity: identity, leaseDurationSeconds: leaseSeconds, renewTime: stamp };
  if (lease === undefined) {
    try {
      await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: { ...spec, acquireTime: stamp, leaseTransitions: 0 } } });
      return true;
    } catch (error) {
      if (isCode(error, 409)) return false;
      throw error;
    }
  }
  const holder = lease.spec?.holderIdentity;
  const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
  const duration = (lease.spec?.leaseDurationSeconds ?? leaseSeconds) * 1000;
  const ours = holder === identity;
  if (!ours && holder && now.getTime() - renewed < duration) return false;
  return replaceLease(options, lease, {
    ...spec,
    acquireTime: ours && lease.spec?.acquireTime ? new V1MicroTime(new Date(lease.spec.acquireTime).getTime()) : stamp,
    leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (ours ? 0 : 1),
  });
}

/**
 * Writes `spec` over the lease as read (its resourceVersion): false when someone else wrote it meanwhile
 * (409), so whatever we decided from the old version no longer holds.
 */
async function replaceLease(options: LeaderOptions, lease: V1Lease, spec: NonNullable<V1Lease["spec"]>): Promise<boolean> {
  const { api, namespace, name } = options;
  try {
    await api.replaceNamespacedLease({ name, namespace, body: { metadata: { ...lease.metadata, name, namespace }, spec } });
    return true;
  } catch (error) {
    if (isCode(error, 409)) return false;
    throw error;
  }
}

/**
 * Gives the lease up, if we hold it: no holder, and a renewal time of now with a one-second duration (what
 * client-go's ReleaseOnCancel writes), so a standby takes over at its next try instead of waiting for the
 * lease to expire. True when it was ours and is released; a lease someone else holds is left alone.
 */
export async function releaseLease(options: LeaderOptions, now = new Date()): Promise<boolean> {
  const { api, namespace, name, identity } = options;
  let lease: V1Lease;
  try {
    lease = await api.readNamespacedLease({ name, namespace });
  } catch (error) {
    if (isCode(error, 404)) return false;
    throw error;
  }
  if (lease.spec?.holderIdentity !== identity) return false;
  const stamp = new V1MicroTime(now.getTime());
  // False when someone took it over meanwhile: it is not ours to release any more.
  return replaceLease(options, lease, { leaseDurationSeconds: 1, acquireTime: stamp, renewTime: stamp, leaseTransitions: lease.spec.leaseTransitions ?? 0 });
}

export interface LeaderElection {
  /**
   * Stops renewing; then, once `beforeRelease` has settled (the work done while leading has stopped),
   * releases the lease if this replica holds it.
   */
  stop(beforeRelease?: () => Promise<void>): Promise<void>;
}

/** Runs the election until stopped; renews at a third of the lease duration. */
export function runLeaderElection(options: LeaderOptions): LeaderElection {
  let leading = false;
  let lastRenew = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const tick = async () => {
    let held = false;
    try {
      held = await tryAcquire(options);
      if (held) lastRenew = Date.now();
    } catch (error) {
      options.logger.warn("lease call failed", { lease: options.name, error: String(error) });
      // Keep leading only while the lease we hold is still valid.
      held = leading && Date.now() - lastRenew < options.leaseSeconds * 1000 * 0.8;
    }
    if (held !== leading) {
      leading = held;
      options.logger.info(leading ? "leading: reconciling" : "not leading: waiting for the lease", { lease: options.name, identity: options.identity });
      options.onChange(leading);
    }
    if (!stopped) {
      timer = setTimeout(() => {
        inFlight = tick();
      }, (options.leaseSeconds * 1000) / 3);
    }
  };
  inFlight = tick();
  return {
    async stop(beforeRelease) {
      stopped = true;
      clearTimeout(timer);
      // A renewal under way would otherwise write the lease back after its release.
      await inFlight;
      await beforeRelease?.();
      try {
        if (await releaseLease(options)) options.logger.info("lease released", { lease: options.name, identity: options.identity });
      } catch (error) {
        options.logger.warn("could not release the lease: a standby takes over once it expires", { lease: options.name, error: String(error) });
      }
    },
  };
}
