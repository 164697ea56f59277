// Bounded polling: every wait in the suites has a deadline and says what it waited for.

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Named in the timeout error. */
  readonly what: string;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until it returns a value other than undefined, or throws when `timeoutMs` passed.
 * A probe that throws is retried (the API server or the Service may not answer yet); the last error or
 * the last "not yet" reason is part of the timeout message.
 */
export async function poll<T>(probe: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 1000;
  let lastProblem = "no attempt finished";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastProblem = "condition not met yet";
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() + intervalMs > deadline) {
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}: ${lastProblem}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Runs both at once and waits for both, even when one fails (so nothing keeps running behind the
 * cleanup); then throws the first failure.
 */
export async function concurrently<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return [a.value, b.value];
}
