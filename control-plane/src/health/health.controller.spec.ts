import type { Request, Response } from 'express';
import { loadConfig } from '../config/config';
import type { DeploymentTarget, SqlValidator } from '../deployments/deployment-target';
import type { Db } from '../store/database';
import type { StreamService } from '../stream/kinesis';
import { HealthController } from './health.controller';
import type { Reconciler } from './reconciler.service';

const ADMIN = 'fs-admin-health-test';
const SECRET = 'connect ECONNREFUSED 10.1.2.3:8081 (http://flink.internal:8081/overview)';

function controller(flinkDown: boolean) {
  const config = { ...loadConfig({}), adminKey: ADMIN };
  const db = { prepare: () => ({ get: () => ({ 1: 1 }) }) } as unknown as Db;
  const target = { ping: async () => { if (flinkDown) throw new Error(SECRET); } } as unknown as DeploymentTarget;
  const validator = { ping: async () => undefined } as unknown as SqlValidator;
  const stream = { isActive: async () => true } as unknown as StreamService;
  const reconciler = { lastRun: { at: '2026-01-01T00:00:00.000Z', ok: false, error: 'http://flink.internal:8081 refused' } } as unknown as Reconciler;
  return new HealthController(config, db, target, validator, stream, reconciler);
}

async function get(flinkDown: boolean, authorization?: string) {
  const reply: { status?: number; body?: any } = {};
  const res = {
    status(code: number) { reply.status = code; return this; },
    json(body: unknown) { reply.body = body; return this; },
  } as unknown as Response;
  await controller(flinkDown).health({ headers: authorization === undefined ? {} : { authorization } } as Request, res);
  return reply as { status: number; body: any };
}

const statusesOnly = {
  stream: { status: 'ok' }, flink: { status: 'down' }, validator: { status: 'ok' }, store: { status: 'ok' }, healthCheck: { status: 'ok' },
};

describe('GET /health', () => {
  it('shows anyone only the status of each component, no error text or internal URL', async () => {
    for (const authorization of [undefined, '', 'Bearer not-the-admin-key', ADMIN, `Bearer ${ADMIN}x`, 'Basic abc']) {
      const reply = await get(true, authorization);
      expect(reply.status).toBe(503);
      expect(reply.body.status).toBe('unavailable');
      expect(reply.body.components).toEqual(statusesOnly);
      expect(JSON.stringify(reply.body)).not.toMatch(/flink\.internal|10\.1\.2\.3|ECONNREFUSED|lastRun/);
    }
  });

  it('shows the details to the admin key', async () => {
    const reply = await get(true, `Bearer ${ADMIN}`);
    expect(reply.status).toBe(503);
    expect(reply.body.components.flink).toEqual({ status: 'down', detail: SECRET });
    expect(reply.body.components.healthCheck).toEqual({ status: 'ok', lastRun: { at: '2026-01-01T00:00:00.000Z', ok: false, error: 'http://flink.internal:8081 refused' } });
  });

  it('keeps the CONTRACT §7 shape: 200 {"status": "ok", "components"} when everything answers', async () => {
    const reply = await get(false);
    expect(reply).toEqual({
      status: 200,
      body: { status: 'ok', components: { ...statusesOnly, flink: { status: 'ok' } } },
    });
    expect((await get(false, `bearer ${ADMIN}`)).body.components.healthCheck.lastRun).toBeDefined();
  });
});
