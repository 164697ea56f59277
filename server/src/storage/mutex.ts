// Locks of the commit step of writes and deletes, in this process.

/** A keyed mutex: callers with the same key run one after another, different keys run concurrently. */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, critical: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous === undefined ? current : previous.then(() => current);
    this.#tails.set(key, tail);
    // Uncontended, `critical` starts in the caller's turn: whatever it queues for next, it queues in the
    // order the callers came.
    if (previous !== undefined) await previous;
    try {
      return await critical();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/** One namespace's holders: any number sharing it, or one alone; waiters in the order they came. */
class Gate {
  shared = 0;
  exclusive = false;
  readonly waiting: Array<{ readonly exclusive: boolean; readonly admit: () => void }> = [];

  get idle(): boolean {
    return this.shared === 0 && !this.exclusive && this.waiting.length === 0;
  }
}

/**
 * The commit lock of a namespace. A file commit changes one key: commits of different keys share the
 * namespace and run at once, commits of the same key run one after another (`runForKey`). What changes
 * more than one key — a delete, which prunes the parent directories it leaves empty; a directory
 * artifact; measuring the namespace's usage — has the namespace to itself (`run`). Fair: a waiting
 * `run` is not overtaken by commits that come after it.
 *
 * Why not one mutex per namespace: a small file's commit is about twenty file-system calls, each a round
 * trip through libuv's thread pool; one at a time, they capped 32 concurrent 4 KiB PUTs into one
 * namespace at a few hundred per second however idle the disk was.
 */
export class NamespaceLock {
  readonly #gates = new Map<string, Gate>();
  readonly #keys = new KeyedMutex();

  /** Runs `critical` with the namespace to itself. */
  run<T>(namespace: string, critical: () => Promise<T>): Promise<T> {
    return this.#hold(namespace, true, critical);
  }

  /** Runs `critical` alone on `key`, beside commits of other keys of the namespace. */
  runForKey<T>(namespace: string, key: string, critical: () => Promise<T>): Promise<T> {
    // The key first: writers queued on one key do not hold the namespace and keep a `run` waiting.
    return this.#keys.run(`${namespace}/${key}`, () => this.#hold(namespace, false, critical));
  }

  async #hold<T>(namespace: string, exclusive: boolean, critical: () => Promise<T>): Promise<T> {
    let gate = this.#gates.get(namespace);
    if (gate === undefined) {
      gate = new Gate();
      this.#gates.set(namespace, gate);
    }
    if (gate.waiting.length === 0 && !gate.exclusive && (!exclusive || gate.shared === 0)) this.#enter(gate, exclusive);
    else await new Promise<void>((admit) => gate.waiting.push({ exclusive, admit }));
    try {
      return await critical();
    } finally {
      if (exclusive) gate.exclusive = false;
      else gate.shared -= 1;
      this.#admitWaiting(gate);
      if (gate.idle) this.#gates.delete(namespace);
    }
  }

  #enter(gate: Gate, exclusive: boolean): void {
    if (exclusive) gate.exclusive = true;
    else gate.shared += 1;
  }

  /** Lets in the waiters at the head of the queue that can enter now: one exclusive, or every sharing one up to the next exclusive. */
  #admitWaiting(gate: Gate): void {
    while (gate.waiting.length > 0 && !gate.exclusive) {
      const next = gate.waiting[0]!;
      if (next.exclusive && gate.shared > 0) return;
      gate.waiting.shift();
      this.#enter(gate, next.exclusive);
      next.admit();
    }
  }
}
