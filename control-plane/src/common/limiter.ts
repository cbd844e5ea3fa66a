/**
 * At most `concurrency` tasks at a time; the rest wait in order (at most `maxWaiting`, then
 * refused at once). Planning SQL and starting Flink jobs take seconds of CPU each: a burst
 * queues here instead of starving everything else on the machine.
 */
export class Limiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting = Infinity,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.turn();
    try {
      return await task();
    } finally {
      // The slot goes straight to the next in line, so no newcomer overtakes it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  private async turn(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.maxWaiting) throw new Error(`${this.waiting.length} tasks are already waiting`);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
}
