import { Limiter } from '../common/limiter';
import { SqlValidator } from './deployment-target';
import { httpJson } from './http';

/**
 * The warm planner (flink-sql's validator): EXPLAIN in a long-lived JVM, no JVM start per
 * request. It plans two scripts at a time (its thread pool): a burst of definitions queues
 * here, so each request's timeout covers its own planning, not the wait behind the others.
 */
export class HttpSqlValidator implements SqlValidator {
  private readonly limiter = new Limiter(2, 200);

  constructor(private readonly baseUrl: string) {}

  validate(sql: string) {
    return this.limiter.run(() =>
      httpJson<{ valid: true; plan: string } | { valid: false; error: string }>('SQL validator', `${this.baseUrl}/validate`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sql }),
        timeoutMs: 30_000,
      }),
    );
  }

  async ping(): Promise<void> {
    await httpJson('SQL validator', `${this.baseUrl}/health`, { timeoutMs: 3000 });
  }
}
