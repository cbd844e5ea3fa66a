import { SqlValidator } from './deployment-target';
import { httpJson } from './http';

/** The warm planner (flink-sql's validator): EXPLAIN in a long-lived JVM, no JVM start per request. */
export class HttpSqlValidator implements SqlValidator {
  constructor(private readonly baseUrl: string) {}

  validate(sql: string) {
    return httpJson<{ valid: true; plan: string } | { valid: false; error: string }>('SQL validator', `${this.baseUrl}/validate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sql }),
      timeoutMs: 30_000,
    });
  }

  async ping(): Promise<void> {
    await httpJson('SQL validator', `${this.baseUrl}/health`, { timeoutMs: 3000 });
  }
}
