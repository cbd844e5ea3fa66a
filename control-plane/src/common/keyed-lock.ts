/**
 * Runs work one at a time per key (an analysis, a payload ID), in the order it was asked
 * for; different keys run concurrently. In memory: across restarts the store carries intent.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `work` once the key's earlier work is done. `work` may `hold` the key past its own end,
   * until given promises settle: its answer goes out while what it started still finishes
   * (a payload's 503 at its deadline, with a PutRecords call still in flight).
   */
  run<T>(key: string, work: (hold: (until: Promise<unknown>) => void) => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const held: Promise<unknown>[] = [];
    const run = previous.catch(() => undefined).then(() => work((until) => held.push(until)));
    const heldToo = () => (held.length ? Promise.allSettled(held) : undefined);
    const tail = run.then(heldToo, heldToo);
    this.tails.set(key, tail);
    const release = () => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    // Free as soon as the work ends when it holds nothing more (before its caller goes on).
    const releaseUnlessHeld = () => held.length === 0 && release();
    run.then(releaseUnlessHeld, releaseUnlessHeld);
    void tail.then(release);
    return run;
  }

  isHeld(key: string): boolean {
    return this.tails.has(key);
  }
}
