import { SqlValidator } from './deployment-target';
import { httpJson } from './http';

/** The validator plans two scripts at a time (its thread pool); more wait here, not in its socket queue. */
const CONCURRENCY = 2;
/** Requests waiting beyond this are refused at once: a burst this long would wait minutes. */
const MAX_WAITING = 200;

/**
 * The warm planner (flink-sql's validator): EXPLAIN in a long-lived JVM, no JVM start per
 * request. A burst of definitions queues here, so each request's timeout covers its own
 * planning, not the wait behind the others.
 */
export class HttpSqlValidator implements SqlValidator {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly baseUrl: string) {}

  async validate(sql: string) {
    await this.turn();
    try {
      return await httpJson<{ valid: true; plan: string } | { valid: false; error: string }>('SQL validator', `${this.baseUrl}/validate`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sql }),
        timeoutMs: 30_000,
      });
    } finally {
      // The slot goes straight to the next in line, so no newcomer overtakes it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  async ping(): Promise<void> {
    await httpJson('SQL validator', `${this.baseUrl}/health`, { timeoutMs: 3000 });
  }

  private async turn(): Promise<void> {
    if (this.running < CONCURRENCY) {
      this.running++;
      return;
    }
    if (this.waiting.length >= MAX_WAITING) throw new Error(`${MAX_WAITING} definitions are waiting for the SQL validator`);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
}
