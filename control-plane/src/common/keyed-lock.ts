/**
 * Runs work one at a time per key (an analysis, a payload ID), in the order it was asked
 * for; different keys run concurrently. In memory: across restarts the store carries intent.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(work);
    this.tails.set(key, run);
    const release = () => {
      if (this.tails.get(key) === run) this.tails.delete(key);
    };
    run.then(release, release);
    return run;
  }

  isHeld(key: string): boolean {
    return this.tails.has(key);
  }
}
