import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CONFIG, Config } from '../config/config';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import { DEPLOYMENT_TARGET, DeploymentTarget, SQL_VALIDATOR, SqlValidator } from '../deployments/deployment-target';
import { RESULTS_REPOSITORY, ResultsRepository } from '../results/results.repository';
import { TenantsService } from '../tenants/tenants.service';
import type { Tenant } from '../tenants/tenants.repository';
import { ANALYSES_REPOSITORY, AnalysesRepository, Analysis, AnalysisStatus } from './analyses.repository';
import { checkDefinition, ValidDefinition } from './analysis-definitions';
import { durationSeconds, parseDuration } from './sql/literals';
import { generateSql, StreamSettings, Templates } from './sql/sql-generator';
import { loadTemplates } from './sql/templates';

export interface AnalysisView {
  id: string;
  name: string;
  kind: string;
  params: Record<string, unknown>;
  environment: string | null;
  status: AnalysisStatus;
  statusChangedAt: string;
  statusMessage?: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * The lifecycle of analyses: validate, deploy one job per analysis, stop, start,
 * replay, delete. Operations on one analysis run one at a time.
 */
@Injectable()
export class AnalysesService {
  private readonly logger = new Logger('Analyses');
  private readonly templates: Templates = loadTemplates();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ANALYSES_REPOSITORY) private readonly repository: AnalysesRepository,
    @Inject(RESULTS_REPOSITORY) private readonly results: ResultsRepository,
    @Inject(DEPLOYMENT_TARGET) private readonly target: DeploymentTarget,
    @Inject(SQL_VALIDATOR) private readonly validator: SqlValidator,
    private readonly tenants: TenantsService,
    metrics: MetricsService,
  ) {
    metrics.gauge('flagstream_analyses', () => {
      const counts = new Map<string, number>();
      for (const a of this.repository.all()) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
      return [...counts].map(([status, value]) => ({ labels: { status }, value }));
    });
  }

  get streams(): StreamSettings {
    return {
      region: this.config.awsRegion,
      endpoint: this.config.kinesisEndpoint,
      eventsStream: this.config.eventsStream,
      resultsStream: this.config.resultsStream,
      allowedLatenessSeconds: this.config.allowedLatenessSeconds,
    };
  }

  /** Checks a definition, generates its SQL and has Flink's planner check that; 400 on any failure. */
  async validate(tenant: Tenant, body: unknown, id: string = randomUUID()): Promise<{ definition: ValidDefinition; sql: string }> {
    const definition = checkDefinition(body, (key) => this.tenants.environmentExists(tenant.id, key));
    const sql = this.sqlFor(id, tenant.key, definition, new Date());
    let verdict: Awaited<ReturnType<SqlValidator['validate']>>;
    try {
      verdict = await this.validator.validate(sql);
    } catch (error) {
      this.logger.error((error as Error).message);
      throw new Problem(503, 'Service Unavailable', 'The SQL validator is not available; try again shortly.', undefined, { 'Retry-After': '5' });
    }
    if (!verdict.valid) {
      throw Problem.invalid([{ path: '/params', message: verdict.error }], `Flink's planner rejected the analysis: ${verdict.error}`);
    }
    return { definition, sql };
  }

  async create(tenant: Tenant, body: unknown): Promise<AnalysisView> {
    // Each analysis is a Flink job holding a slot: one tenant must not take the cluster.
    if (this.repository.list(tenant.id).length >= this.config.maxAnalysesPerTenant) {
      throw Problem.conflict(`The tenant has ${this.config.maxAnalysesPerTenant} analyses, the most allowed; delete one first.`);
    }
    const id = randomUUID();
    const { definition, sql } = await this.validate(tenant, body, id);
    const now = new Date().toISOString();
    const analysis: Analysis = {
      id, tenantId: tenant.id, name: definition.name, kind: definition.kind, params: { ...definition.params },
      environment: definition.environment, status: 'PENDING', desiredState: 'RUNNING', statusChangedAt: now,
      sql, createdAt: now, updatedAt: now, resultsFrom: undefined,
    };
    this.repository.insert(analysis);
    this.background(id, () => this.deploy(id, { from: new Date(now) }));
    return toView(analysis);
  }

  list(tenant: Tenant): { analyses: AnalysisView[] } {
    return { analyses: this.repository.list(tenant.id).map(toView) };
  }

  get(tenant: Tenant, id: string): AnalysisView {
    return toView(this.owned(tenant, id));
  }

  sql(tenant: Tenant, id: string): { sql: string } {
    return { sql: this.owned(tenant, id).sql };
  }

  /** A new definition: the old job goes (its state does not fit the new query), old results too, a new job starts now. */
  async update(tenant: Tenant, id: string, body: unknown): Promise<AnalysisView> {
    this.owned(tenant, id);
    const { definition, sql } = await this.validate(tenant, body, id);
    return this.exclusive(id, async () => {
      const current = this.owned(tenant, id);
      if (current.jobId) await this.target.cancel(current.jobId);
      this.results.deleteFor(id);
      const now = new Date();
      const updated = this.repository.update(id, {
        name: definition.name, kind: definition.kind, params: { ...definition.params }, environment: definition.environment,
        sql, jobId: undefined, savepoint: undefined, resultsFrom: undefined, desiredState: 'RUNNING', updatedAt: now.toISOString(),
      })!;
      this.setStatus(updated, 'PENDING');
      this.background(id, () => this.deploy(id, { from: now }));
      return toView(this.repository.findById(id)!);
    });
  }

  async stop(tenant: Tenant, id: string): Promise<AnalysisView> {
    const analysis = this.owned(tenant, id);
    if (analysis.desiredState === 'STOPPED') return toView(analysis);
    this.repository.update(id, { desiredState: 'STOPPED', updatedAt: new Date().toISOString() });
    this.setStatus(this.repository.findById(id)!, 'STOPPING');
    this.background(id, async () => {
      const current = this.repository.findById(id);
      if (!current) return;
      const savepoint = current.jobId ? await this.target.stopWithSavepoint(current.jobId) : undefined;
      this.repository.update(id, { savepoint: savepoint ?? current.savepoint, jobId: undefined });
      this.setStatus(this.repository.findById(id)!, 'STOPPED', savepoint ? `savepoint ${savepoint}` : undefined);
    });
    return toView(this.repository.findById(id)!);
  }

  async start(tenant: Tenant, id: string): Promise<AnalysisView> {
    const analysis = this.owned(tenant, id);
    if (analysis.desiredState === 'RUNNING') return toView(analysis);
    this.repository.update(id, { desiredState: 'RUNNING', updatedAt: new Date().toISOString() });
    this.setStatus(this.repository.findById(id)!, 'PENDING');
    // From the savepoint the job resumes where it stopped; without one, after the last complete window.
    this.background(id, () => this.deploy(id, { resume: true }));
    return toView(this.repository.findById(id)!);
  }

  /** Re-reads the stream from `from` and rewrites the results of every window from there on. */
  async replay(tenant: Tenant, id: string, body: unknown): Promise<AnalysisView> {
    this.owned(tenant, id);
    const fromText = (body as { from?: unknown } | undefined)?.from;
    const from = typeof fromText === 'string' && ISO_TIME.test(fromText) ? new Date(fromText) : undefined;
    if (!from || Number.isNaN(from.getTime())) {
      throw Problem.invalid([{ path: '/from', message: 'must be an ISO-8601 time such as "2026-11-25T16:00:00Z"' }]);
    }
    const earliest = new Date(Date.now() - this.config.streamRetentionHours * 3600_000);
    if (from < earliest) {
      throw Problem.invalid([{ path: '/from', message: `is before the stream's retention; the earliest time is ${earliest.toISOString()}` }]);
    }
    if (from > new Date()) throw Problem.invalid([{ path: '/from', message: 'is in the future' }]);
    return this.exclusive(id, async () => {
      const current = this.owned(tenant, id);
      if (current.jobId) await this.target.cancel(current.jobId);
      const windowStart = this.alignToWindow(current, from);
      this.repository.update(id, {
        jobId: undefined, savepoint: undefined, desiredState: 'RUNNING', resultsFrom: windowStart.toISOString(), updatedAt: new Date().toISOString(),
      });
      this.setStatus(this.repository.findById(id)!, 'PENDING', `replaying from ${windowStart.toISOString()}`);
      this.background(id, () => this.deploy(id, { from: windowStart }));
      return toView(this.repository.findById(id)!);
    });
  }

  async delete(tenant: Tenant, id: string): Promise<void> {
    this.owned(tenant, id);
    await this.exclusive(id, async () => {
      // Read again under the lock: a deployment that was under way may have started a job since.
      const current = this.owned(tenant, id);
      if (current.jobId) await this.target.cancel(current.jobId);
      this.repository.delete(tenant.id, id);
    });
  }

  /**
   * Starts the analysis' job. `from`: read the stream from there (less the allowed
   * lateness, so the first window is complete); `resume`: from the savepoint, or
   * after the last stored window.
   */
  async deploy(id: string, start: { from?: Date; resume?: boolean }): Promise<void> {
    const analysis = this.repository.findById(id);
    if (!analysis || analysis.desiredState !== 'RUNNING') return;
    const tenantKey = this.tenants.tenantKey(analysis.tenantId);
    const definition: ValidDefinition = {
      name: analysis.name, kind: 'flag-evaluations', params: analysis.params as unknown as ValidDefinition['params'], environment: analysis.environment,
    };
    let from = start.from ?? new Date(analysis.createdAt);
    let savepointPath: string | undefined;
    if (start.resume) {
      savepointPath = analysis.savepoint;
      const lastEnd = this.results.latestWindowEnd(id);
      if (!savepointPath && lastEnd) from = new Date(lastEnd);
      if (!savepointPath) this.repository.update(id, { resultsFrom: from.toISOString() });
    }
    const readFrom = new Date(from.getTime() - this.config.allowedLatenessSeconds * 1000);
    // Resuming from a savepoint needs the very same script; otherwise the start position moves.
    const sql = savepointPath ? analysis.sql : this.sqlFor(id, tenantKey, definition, readFrom);
    this.setStatus(analysis, 'DEPLOYING');
    try {
      const jobId = await this.target.deploy({ name: `flagstream-${analysis.kind}-${id}`, sql, savepointPath });
      this.repository.update(id, { jobId, sql, savepoint: undefined });
      this.logger.log(`analysis ${id} deployed as job ${jobId}`);
    } catch (error) {
      const message = (error as Error).message;
      this.logger.error(`analysis ${id} could not be deployed: ${message}`);
      this.setStatus(this.repository.findById(id)!, 'FAILED', `deployment failed: ${message.slice(0, 1000)}`);
    }
  }

  /** Deploys a job the target lost, resuming after the last stored window. */
  redeploy(id: string): Promise<void> {
    return this.exclusive(id, async () => {
      this.repository.update(id, { jobId: undefined });
      await this.deploy(id, { resume: true });
    }).catch((error: Error) => this.logger.error(`analysis ${id}: ${error.message}`));
  }

  /** Records a status and when it last changed; used by the lifecycle and by the health check. */
  setStatus(analysis: Analysis, status: AnalysisStatus, message?: string): void {
    if (analysis.status === status && analysis.statusMessage === message) return;
    const changes: Partial<Analysis> = { status, statusMessage: message };
    if (analysis.status !== status) changes.statusChangedAt = new Date().toISOString();
    this.repository.update(analysis.id, changes);
  }

  /** True while a lifecycle operation on the analysis is under way; the health check leaves it alone then. */
  isBusy(id: string): boolean {
    return this.locks.has(id);
  }

  private sqlFor(id: string, tenantKey: string, definition: ValidDefinition, from: Date): string {
    return generateSql(
      { id, tenantKey, environment: definition.environment, kind: definition.kind, params: definition.params },
      this.streams,
      { at: from },
      this.templates,
    );
  }

  private alignToWindow(analysis: Analysis, time: Date): Date {
    const window = parseDuration(String(analysis.params.window));
    const size = (window ? durationSeconds(window) : 1) * 1000;
    return new Date(Math.floor(time.getTime() / size) * size);
  }

  private owned(tenant: Tenant, id: string): Analysis {
    const analysis = this.repository.find(tenant.id, id);
    if (!analysis) throw Problem.notFound(`Analysis ${id}`);
    return analysis;
  }

  private exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(work);
    this.locks.set(id, run);
    void run.finally(() => this.locks.get(id) === run && this.locks.delete(id)).catch(() => undefined);
    return run;
  }

  private background(id: string, work: () => Promise<void>): void {
    void this.exclusive(id, work).catch((error: Error) => this.logger.error(`analysis ${id}: ${error.message}`));
  }
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export function toView(a: Analysis): AnalysisView {
  return {
    id: a.id, name: a.name, kind: a.kind, params: a.params, environment: a.environment ?? null, status: a.status,
    statusChangedAt: a.statusChangedAt, ...(a.statusMessage ? { statusMessage: a.statusMessage } : {}),
    createdAt: a.createdAt, updatedAt: a.updatedAt,
  };
}
