import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { CONFIG, Config } from '../config/config';
import { DATABASE, Db } from '../store/database';
import { DEPLOYMENT_TARGET, DeploymentTarget, SQL_VALIDATOR, SqlValidator } from '../deployments/deployment-target';
import { StreamService } from '../stream/kinesis';
import { StatusReconciler } from './status-reconciler.service';

type Component = { status: 'ok' | 'down'; detail?: string };

@Controller()
export class HealthController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DATABASE) private readonly db: Db,
    @Inject(DEPLOYMENT_TARGET) private readonly target: DeploymentTarget,
    @Inject(SQL_VALIDATOR) private readonly validator: SqlValidator,
    private readonly stream: StreamService,
    private readonly reconciler: StatusReconciler,
  ) {}

  /** 200 when the stream, Flink and the store answer; 503 with the same shape otherwise. */
  @Get('health')
  async health(@Res() res: Response) {
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
    const components = { stream, flink, validator, store, healthCheck: { status: 'ok' as const, lastRun: this.reconciler.lastRun } };
    const ok = [stream, flink, validator, store].every((c) => c.status === 'ok');
    const down = Object.entries({ stream, flink, validator, store }).filter(([, c]) => c.status !== 'ok').map(([name]) => name);
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      components,
      ...(ok ? {} : { title: 'Service Unavailable', detail: `Not answering: ${down.join(', ')}.` }),
    });
  }
}
