import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { GuardrailParams } from '@flagstream/schemas';
import { MetricsService } from '../metrics/metrics.service';
import { GUARDRAIL_STATES, GuardrailState, GuardrailStatesRepository, WatchedGuardrail } from './guardrail-states.repository';
import { guardrailVerdict, variationStatsOf, VariationStats } from './presenters';
import { RESULTS_REPOSITORY, ResultsRepository } from './results.repository';

/** Webhook deliveries are retried this often at first, doubling up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;
const WEBHOOK_TIMEOUT_MS = 5000;
/** Deliveries due are looked for this often (a delivery itself starts as soon as the verdict turns). */
const DELIVERY_TICK_MS = 500;
const MAX_ROWS = 1000;

/**
 * Guardrails are checked as their data arrives: the results ingestor nudges this watcher
 * whenever it stored rows, and every guardrail whose rows changed since its last verdict is
 * judged again (guardrailVerdict). A turn to `regressed` owes its webhook a POST of the row
 * and the analysis id, retried with backoff until answered 2xx; the debt is in the store, so
 * a restart pays it.
 */
@Injectable()
export class GuardrailWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Guardrails');
  private timer?: NodeJS.Timeout;
  private scheduled = false;
  private delivering = false;
  private stopped = false;
  /** Tests replace the clock. */
  now = () => Date.now();

  constructor(
    @Inject(GUARDRAIL_STATES) private readonly states: GuardrailStatesRepository,
    @Inject(RESULTS_REPOSITORY) private readonly results: ResultsRepository,
    private readonly metrics: MetricsService,
  ) {}

  onApplicationBootstrap() {
    this.timer = setInterval(() => {
      this.evaluate();
      void this.deliver();
    }, DELIVERY_TICK_MS);
    this.timer.unref();
  }

  onApplicationShutdown() {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Rows were stored: judge the guardrails again soon (coalesced), and deliver what turned. */
  nudge(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.evaluate();
      void this.deliver();
    });
  }

  /** Judges every guardrail whose rows changed since its last verdict; returns how many it judged. */
  evaluate(): number {
    let judged = 0;
    for (const guardrail of this.states.guardrails()) {
      const state = this.states.get(guardrail.id);
      if (state && state.generation === guardrail.generation && state.evaluatedResultAt === guardrail.lastResultAt) continue;
      this.judge(guardrail, state);
      judged++;
    }
    return judged;
  }

  /** The row as served: the stored verdict, or one computed now when there is none yet. */
  current(guardrail: WatchedGuardrail): Record<string, unknown> {
    const state = this.states.get(guardrail.id);
    if (state && state.generation === guardrail.generation && state.evaluatedResultAt === guardrail.lastResultAt) return state.row;
    return this.judge(guardrail, state).row;
  }

  private judge(guardrail: WatchedGuardrail, state: GuardrailState | undefined): GuardrailState {
    const stats = this.results.storedRows(guardrail.id, MAX_ROWS).map(variationStatsOf).filter((s): s is VariationStats => Boolean(s));
    const verdict = guardrailVerdict(stats, guardrail.params as unknown as GuardrailParams);
    const previous = state?.status ?? 'insufficient-data';
    const now = new Date(this.now()).toISOString();
    const since = verdict.status === previous ? (state?.since ?? guardrail.createdAt) : now;
    const row = { status: verdict.status, since, delta: verdict.delta, bound: verdict.bound, units: verdict.units };
    const webhook = (guardrail.params as { webhook?: string }).webhook;
    const turned = verdict.status === 'regressed' && previous !== 'regressed';
    const next: GuardrailState = {
      analysisId: guardrail.id, generation: guardrail.generation, status: verdict.status, since, row, evaluatedResultAt: guardrail.lastResultAt,
      webhookPayload: turned && webhook ? { analysisId: guardrail.id, ...row } : state?.webhookPayload,
      webhookAttempts: turned ? 0 : (state?.webhookAttempts ?? 0),
      webhookNextAt: turned && webhook ? now : state?.webhookNextAt,
    };
    this.states.save(next);
    if (turned) {
      this.metrics.inc('flagstream_guardrails_regressed_total');
      this.logger.warn(`guardrail ${guardrail.id} regressed (delta ${verdict.delta}, bound ${verdict.bound})`);
    }
    return next;
  }

  /** POSTs every delivery due; a failure is retried later, never dropped. */
  async deliver(): Promise<void> {
    if (this.delivering || this.stopped) return;
    this.delivering = true;
    try {
      for (const state of this.states.dueDeliveries(new Date(this.now()).toISOString())) {
        const guardrail = this.states.guardrails().find((g) => g.id === state.analysisId);
        const url = (guardrail?.params as { webhook?: string } | undefined)?.webhook;
        if (!url || !state.webhookPayload) {
          this.states.save({ ...state, webhookPayload: undefined, webhookNextAt: undefined });
          continue;
        }
        const outcome = await post(url, state.webhookPayload);
        const fresh = this.states.get(state.analysisId);
        if (!fresh) continue;
        if (outcome === 'ok') {
          this.metrics.inc('flagstream_guardrail_webhooks_total', 1, { outcome: 'delivered' });
          this.states.save({ ...fresh, webhookPayload: undefined, webhookNextAt: undefined, webhookAttempts: fresh.webhookAttempts + 1 });
        } else {
          const attempts = fresh.webhookAttempts + 1;
          const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempts - 1));
          this.metrics.inc('flagstream_guardrail_webhooks_total', 1, { outcome: 'failed' });
          this.logger.warn(`guardrail ${state.analysisId}: webhook failed (${outcome}); retrying in ${wait / 1000} s`);
          this.states.save({ ...fresh, webhookAttempts: attempts, webhookNextAt: new Date(this.now() + wait).toISOString() });
        }
      }
    } finally {
      this.delivering = false;
    }
  }
}

async function post(url: string, body: Record<string, unknown>): Promise<'ok' | string> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'flagstream-guardrail' },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    await response.arrayBuffer().catch(() => undefined);
    return response.status >= 200 && response.status < 300 ? 'ok' : `HTTP ${response.status}`;
  } catch (error) {
    return (error as Error).message;
  }
}
