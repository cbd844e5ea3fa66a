import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { hashKey, sameHash } from '../common/keys';
import { keyOf } from '../tenants/auth';
import { CONFIG, Config } from '../config/config';
import { DATABASE, Db } from '../store/database';
import { DEPLOYMENT_TARGET, DeploymentTarget, SQL_VALIDATOR, SqlValidator } from '../deployments/deployment-target';
import { StreamService } from '../stream/kinesis';
import { Reconciler } from './reconciler.service';

type Component = { status: 'ok' | 'down'; detail?: string };

@Controller()
export class HealthController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DATABASE) private readonly db: Db,
    @Inject(DEPLOYMENT_TARGET) private readonly target: DeploymentTarget,
    @Inject(SQL_VALIDATOR) private readonly validator: SqlValidator,
    private readonly stream: StreamService,
    private readonly reconciler: Reconciler,
  ) {}

  /**
   * 200 when the stream, Flink and the store answer; 503 with the same shape otherwise.
   * Anyone gets `{"status", "components": {name: {"status"}}}`; only the admin key
   * (`Authorization: Bearer <admin key>`) also gets each component's details (error
   * text, which can name internal hosts, and the health check's last run).
   */
  @Get('health')
  async health(@Req() req: Request, @Res() res: Response) {
    const check = async (work: () => Promise<unknown>): Promise<Component> => {
      try {
        await work();
        return { status: 'ok' };
      } catch (error) {
        return { status: 'down', detail: (error as Error).message };
      }
    };
    const [stream, flink, validator, store] = await Promise.all([
      check(async () => {
        if (!(await this.stream.isActive(this.config.eventsStream))) throw new Error(`stream ${this.config.eventsStream} is not active`);
      }),
      check(() => this.target.ping()),
      check(() => this.validator.ping()),
      check(async () => this.db.prepare('SELECT 1').get()),
    ]);
    const detailed: Record<string, { status: string; [detail: string]: unknown }> = {
      stream, flink, validator, store, healthCheck: { status: 'ok' as const, lastRun: this.reconciler.lastRun },
    };
    const components = this.isAdmin(req.headers.authorization)
      ? detailed
      : Object.fromEntries(Object.entries(detailed).map(([name, c]) => [name, { status: c.status }]));
    const ok = [stream, flink, validator, store].every((c) => c.status === 'ok');
    const down = Object.entries({ stream, flink, validator, store }).filter(([, c]) => c.status !== 'ok').map(([name]) => name);
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      components,
      // Names only the components (shown anyway), never their error text.
      ...(ok ? {} : { title: 'Service Unavailable', detail: `Not answering: ${down.join(', ')}.` }),
    });
  }

  /** Hashed once, as the key guard does; compared in constant time. */
  private adminKeyHash?: string;

  private isAdmin(authorization: string | undefined): boolean {
    const key = keyOf(authorization, false);
    if (!key || !this.config.adminKey) return false;
    this.adminKeyHash ??= hashKey(this.config.adminKey);
    return sameHash(hashKey(key), this.adminKeyHash);
  }
}
