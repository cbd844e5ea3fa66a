import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { GuardrailState, GuardrailStatesRepository, WatchedGuardrail } from './guardrail-states.repository';
import { GuardrailWatcher } from './guardrail-watcher.service';
import type { ResultRow, ResultsRepository } from './results.repository';

/** The watcher with in-memory states, the rows it is shown, and a real HTTP webhook. */
describe('GuardrailWatcher', () => {
  let server: Server;
  let answers: number[];
  const received: Record<string, unknown>[] = [];
  let url = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c)).on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(answers.shift() ?? 200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  function setup(rows: ResultRow[]) {
    const states = new Map<string, GuardrailState>();
    const guardrail: WatchedGuardrail = {
      id: 'g1', generation: 1, createdAt: '2026-11-26T00:00:00.000Z', lastResultAt: 'r1',
      params: { flagKey: 'f', metric: { eventKey: 'err', type: 'conversion', direction: 'lower-is-better' }, treatmentVariation: 1, minUnits: 100, webhook: url },
    };
    const repo: GuardrailStatesRepository = {
      guardrails: () => [guardrail],
      get: (id) => states.get(id),
      save: (s) => void states.set(s.analysisId, s),
      dueDeliveries: (now) => [...states.values()].filter((s) => s.webhookPayload && s.webhookNextAt! <= now),
    };
    const results = { storedRows: () => rows } as unknown as ResultsRepository;
    const watcher = new GuardrailWatcher(repo, results, { inc: () => undefined } as never);
    let now = Date.parse('2026-11-26T01:00:00.000Z');
    watcher.now = () => now;
    return { watcher, states, guardrail, advance: (ms: number) => (now += ms) };
  }
  const arm = (variation: number, units: number, errors: number): ResultRow => ({ windowStart: '', windowEnd: '', variation, units, sum: errors, sumSquares: errors, multipleExposures: 0 });

  it('judges once per change of the rows, and POSTs a turn to regressed until the webhook answers 2xx', async () => {
    received.length = 0;
    answers = [503, 200];
    const { watcher, states, guardrail, advance } = setup([arm(0, 1000, 50), arm(1, 1000, 150)]);
    expect(watcher.evaluate()).toBe(1);
    expect(watcher.evaluate()).toBe(0); // nothing changed
    expect(states.get('g1')).toMatchObject({ status: 'regressed', since: '2026-11-26T01:00:00.000Z' });
    await watcher.deliver();
    expect(received).toEqual([expect.objectContaining({ analysisId: 'g1', status: 'regressed', units: { control: 1000, treatment: 1000 } })]);
    await watcher.deliver(); // not due yet: retried after 1 s
    expect(received).toHaveLength(1);
    advance(1000);
    await watcher.deliver();
    expect(received).toHaveLength(2);
    expect(states.get('g1')!.webhookPayload).toBeUndefined();
    // Still regressed when the rows change again: no second notification.
    guardrail.lastResultAt = 'r2';
    expect(watcher.evaluate()).toBe(1);
    advance(5000);
    await watcher.deliver();
    expect(received).toHaveLength(2);
  });

  it('stays insufficient-data below minUnits and healthy A/A, calling nobody', async () => {
    received.length = 0;
    const few = setup([arm(0, 50, 5), arm(1, 50, 5)]);
    expect(few.watcher.current(few.guardrail)).toMatchObject({ status: 'insufficient-data', since: '2026-11-26T00:00:00.000Z' });
    const aa = setup([arm(0, 1000, 50), arm(1, 1000, 52)]);
    aa.watcher.evaluate();
    await aa.watcher.deliver();
    expect(aa.states.get('g1')).toMatchObject({ status: 'healthy' });
    expect(received).toEqual([]);
  });
});
