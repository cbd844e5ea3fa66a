import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CONFIG, Config } from '../config/config';
import { Problem } from '../common/problem';
import { MetricsService } from '../metrics/metrics.service';
import { SQL_VALIDATOR, SqlValidator } from '../deployments/deployment-target';
import { LakeFiles } from '../lake/lake-files';
import { DATABASE, Db } from '../store/database';
import { StreamService } from '../stream/kinesis';
import { RESULTS_REPOSITORY, ResultsRepository } from '../results/results.repository';
import { TenantsService } from '../tenants/tenants.service';
import type { Tenant } from '../tenants/tenants.repository';
import { ANALYSES_REPOSITORY, AnalysesRepository, Analysis, AnalysisStatus } from './analyses.repository';
import { AnalysisChanges } from './analysis-changes';
import { checkDefinition, KindParams, ValidDefinition } from './analysis-definitions';
import { recomputeOf } from './kind-traits';
import { fromCreation, fromTime, RecomputePlan } from './recompute';
import { durationSeconds, parseDuration } from './sql/literals';
import { generatePoolSql, generateSql, LakeBackfill, ProgressProbe, StreamSettings, Templates } from './sql/sql-generator';
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
  /** Events older than the lateness horizon: counted here, nowhere else (CONTRACT §5). */
  lateEvents: number;
  /** When a result row was last stored. */
  lastResultAt: string | null;
  /** The pool whose job computes it (docs/pools.md): its members restart together. Null until assigned. */
  pool: string | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * The lifecycle API of analyses: validate, create, change, stop, start, replay, delete.
 * It only writes intent (desired state, generation, where to read from) to the store;
 * the reconciler (health module) makes the target match it, also after a crash.
 */
@Injectable()
export class AnalysesService {
  private readonly logger = new Logger('Analyses');
  private readonly validShapes = new Set<string>();
  private readonly templates: Templates = loadTemplates();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ANALYSES_REPOSITORY) private readonly repository: AnalysesRepository,
    @Inject(RESULTS_REPOSITORY) private readonly results: ResultsRepository,
    @Inject(SQL_VALIDATOR) private readonly validator: SqlValidator,
    @Inject(DATABASE) private readonly db: Db,
    private readonly tenants: TenantsService,
    private readonly stream: StreamService,
    private readonly changes: AnalysisChanges,
    metrics: MetricsService,
    @Optional() private readonly lake?: LakeFiles,
  ) {
    metrics.gauge('flagstream_analyses', () => {
      const counts = new Map<string, number>();
      for (const a of this.repository.all()) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
      return [...counts].map(([status, value]) => ({ labels: { status }, value }));
    }, ['status']);
  }

  get streams(): StreamSettings {
    return {
      region: this.config.awsRegion,
      endpoint: this.config.kinesisEndpoint,
      eventsStream: this.config.eventsStream,
      resultsStream: this.config.resultsStream,
      latenessHorizonSeconds: this.config.latenessHorizonSeconds,
      retentionHours: this.config.streamRetentionHours,
      pollIntervalMs: pollIntervalMs(this.config.maxPools + this.config.maxCustomPools),
      // The local emulator (single-threaded) stalls every client while it encodes a 10,000-record
      // answer to a job catching up: 1,000 records of at most FLAGSTREAM_STREAM_RECORD_BYTES
      // (16 KiB) keep an answer near Kinesis' own 10 MB cap. On AWS the connector's default stands.
      ...(this.config.kinesisEndpoint ? { maxRecordsPerPoll: EMULATOR_RECORDS_PER_POLL } : {}),
      customSqlStateTtlMs: this.config.customSqlStateTtlSeconds * 1000,
    };
  }

  /** Checks a definition, generates its SQL and has Flink's planner check that; 400 on any failure. */
  async validate(tenant: Tenant, body: unknown, id: string = randomUUID()): Promise<{ definition: ValidDefinition; sql: string }> {
    const definition = checkDefinition(body, (key) => this.tenants.environmentExists(tenant.id, key));
    const custom = definition.kind === 'custom-sql';
    if (custom && this.config.maxCustomPools === 0) {
      throw Problem.invalid([{ path: '/kind', message: 'custom-sql is turned off here (FLAGSTREAM_MAX_CUSTOM_POOLS=0)' }]);
    }
    const sql = this.generate({ id, tenantKey: tenant.key, definition, generation: 1, readFrom: new Date() });
    // Generated scripts differ only in their literals (base64 strings, checked integers): Flink's
    // planner gives every script of one shape the same verdict, so a shape it accepted is not
    // planned again. A burst of definitions costs seconds, not minutes. Not a custom query: the
    // query itself is what the planner (the runner's sandbox) must judge, every time.
    const shape = shapeOf(sql);
    if (!custom && this.validShapes.has(shape)) return { definition, sql };
    let verdict: Awaited<ReturnType<SqlValidator['validate']>>;
    try {
      verdict = await this.validator.validate(sql);
    } catch (error) {
      this.logger.error((error as Error).message);
      throw new Problem(503, 'Service Unavailable', 'The SQL validator is not available; try again shortly.', undefined, { 'Retry-After': '5' });
    }
    if (!verdict.valid) {
      throw Problem.invalid([{ path: custom ? '/params/sql' : '/params', message: verdict.error }], `Flink's planner rejected the analysis: ${verdict.error}`);
    }
    if (custom) return { definition, sql };
    if (this.validShapes.size >= MAX_VALID_SHAPES) this.validShapes.clear();
    this.validShapes.add(shape);
    return { definition, sql };
  }

  async create(tenant: Tenant, body: unknown): Promise<AnalysisView> {
    // Every analysis adds to a pool's work and to its restarts: one tenant must not take them all.
    if (this.repository.list(tenant.id).length >= this.config.maxAnalysesPerTenant) {
      throw Problem.conflict(`The tenant has ${this.config.maxAnalysesPerTenant} analyses, the most allowed; delete one first.`);
    }
    const id = randomUUID();
    const { definition } = await this.validate(tenant, body, id);
    const now = new Date();
    const plan = planFromCreation(now, definition);
    // The validated script with the job's real start: GET …/sql shows what will run.
    const sql = this.generate({ id, tenantKey: tenant.key, definition, generation: 1, readFrom: plan.readFrom });
    const analysis: Analysis = {
      id, tenantId: tenant.id, name: definition.name, kind: definition.kind, params: { ...definition.params },
      environment: definition.environment, status: 'PENDING', desiredState: 'RUNNING', statusChangedAt: now.toISOString(),
      sql, createdAt: now.toISOString(), updatedAt: now.toISOString(), generation: 1, readFrom: plan.readFrom.toISOString(),
      lateEvents: 0,
    };
    this.repository.insert(analysis);
    this.changes.changed(id);
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

  /**
   * A new definition: a new generation recomputes the analysis' whole history (from its
   * creation, or from the oldest time the stream holds) the new way; the old rows go.
   */
  async update(tenant: Tenant, id: string, body: unknown): Promise<AnalysisView> {
    this.owned(tenant, id);
    const { definition } = await this.validate(tenant, body, id);
    const current = this.owned(tenant, id);
    const plan = planFromCreation(new Date(current.createdAt), definition);
    const sql = this.generate({ id, tenantKey: tenant.key, definition, generation: current.generation + 1, readFrom: plan.readFrom });
    // One transaction: a crash never leaves the new definition with the old rows.
    this.db.transaction(() => {
      this.repository.update(id, {
        name: definition.name, kind: definition.kind, params: { ...definition.params }, environment: definition.environment, sql,
        generation: current.generation + 1, readFrom: plan.readFrom.toISOString(), resultsFrom: undefined,
        jobId: undefined, desiredState: 'RUNNING', updatedAt: new Date().toISOString(),
      });
      this.results.startGeneration(id, { dropRows: true });
    })();
    this.setStatus(this.repository.findById(id)!, 'PENDING', `recomputing from ${plan.readFrom.toISOString()}`);
    this.changes.changed(id);
    return toView(this.repository.findById(id)!);
  }

  async stop(tenant: Tenant, id: string): Promise<AnalysisView> {
    const analysis = this.owned(tenant, id);
    if (analysis.desiredState === 'STOPPED') return toView(analysis);
    this.repository.update(id, { desiredState: 'STOPPED', updatedAt: new Date().toISOString() });
    this.setStatus(this.repository.findById(id)!, 'STOPPING');
    this.changes.changed(id);
    return toView(this.repository.findById(id)!);
  }

  /**
   * Runs again: restored from its pool's savepoint when the pool's members are the same as at the
   * stop, else recomputing what could have changed since (docs/pools.md).
   */
  async start(tenant: Tenant, id: string): Promise<AnalysisView> {
    const analysis = this.owned(tenant, id);
    if (analysis.desiredState === 'RUNNING') return toView(analysis);
    this.repository.update(id, { desiredState: 'RUNNING', updatedAt: new Date().toISOString() });
    this.setStatus(this.repository.findById(id)!, 'PENDING');
    this.changes.changed(id);
    return toView(this.repository.findById(id)!);
  }

  /** Re-reads the stream from `from` and rewrites every window from there on that the stream holds whole. */
  async replay(tenant: Tenant, id: string, body: unknown): Promise<AnalysisView> {
    const current = this.owned(tenant, id);
    const fromText = (body as { from?: unknown } | undefined)?.from;
    const from = typeof fromText === 'string' && ISO_TIME.test(fromText) ? new Date(fromText) : undefined;
    if (!from || Number.isNaN(from.getTime())) {
      throw Problem.invalid([{ path: '/from', message: 'must be an ISO-8601 time such as "2026-11-25T16:00:00Z"' }]);
    }
    // With the data lake, a replay reaches back as far as the lake holds every event (CONTRACT §9).
    const streamHeld = await this.oldestHeld();
    const lakeFrom = this.lake?.coveredFrom();
    const oldestHeld = lakeFrom && lakeFrom < streamHeld ? lakeFrom : streamHeld;
    if (from < oldestHeld) {
      const holds = lakeFrom ? 'the stream and the data lake hold' : 'the stream holds';
      throw Problem.invalid([{ path: '/from', message: `is before what ${holds}; the earliest time is ${oldestHeld.toISOString()}` }]);
    }
    if (from > new Date()) throw Problem.invalid([{ path: '/from', message: 'is in the future' }]);
    const recompute = recomputeOf(kindParamsOf(current));
    const plan = recompute.type === 'windowed' ? fromTime(from, recompute.windowMs, oldestHeld) : { readFrom: from };
    this.startGeneration(current, plan, { desiredState: 'RUNNING' });
    this.setStatus(this.repository.findById(id)!, 'PENDING', `replaying from ${plan.resultsFrom!.toISOString()}`);
    this.changes.changed(id);
    return toView(this.repository.findById(id)!);
  }

  /** Gone at once; its job, now expected by no analysis, is cancelled here or by the reconciler's next pass. */
  async delete(tenant: Tenant, id: string): Promise<void> {
    this.owned(tenant, id);
    this.repository.delete(tenant.id, id);
    this.changes.changed(id);
  }

  /**
   * A new generation of the same definition reading from `plan`: replays, and jobs lost
   * without a checkpoint. Its rows replace the older generation's window by window.
   */
  startGeneration(analysis: Analysis, plan: RecomputePlan, changes: Partial<Analysis> = {}): void {
    this.db.transaction(() => {
      const next = { ...analysis, generation: analysis.generation + 1, readFrom: plan.readFrom.toISOString() };
      this.repository.update(analysis.id, {
        generation: next.generation, readFrom: next.readFrom, resultsFrom: plan.resultsFrom?.toISOString(), sql: this.jobSql(next),
        jobId: undefined, updatedAt: new Date().toISOString(), ...changes,
      });
      this.results.startGeneration(analysis.id, { dropRows: false });
    })();
  }

  /** The analysis' own script: its current generation reading from its `readFrom`, as a pool of one. */
  jobSql(analysis: Analysis): string {
    return this.poolSql([analysis]);
  }

  /**
   * The script of a pool job about to start: also reading the data lake when a member reads
   * from before where the events stream begins (a replay older than the stream, or a stream
   * newer than the member's history), up to what the lake holds now.
   */
  async deployableSql(members: Analysis[], probe: ProgressProbe): Promise<{ sql: string; lake?: LakeBackfill }> {
    const lake = await this.lakeBackfillOf(members);
    return { sql: this.poolSql(members, probe, lake), lake };
  }

  private async lakeBackfillOf(members: Analysis[]): Promise<LakeBackfill | undefined> {
    if (!this.lake?.coveredFrom()) return undefined;
    const begins = await this.stream.beginsAt(this.config.eventsStream);
    const early = members.filter((a) => new Date(a.readFrom ?? a.createdAt) < begins);
    if (!early.length) return undefined;
    const tenantKeys = [...new Set(early.map((a) => this.tenants.tenantKey(a.tenantId)))];
    const from = new Date(Math.min(...early.map((a) => Date.parse(a.readFrom ?? a.createdAt))));
    const records = await this.lake.recordsBefore(tenantKeys, from.getTime(), begins.getTime());
    return records ? { uri: this.lake.uri, tenantKeys, from, until: begins, records } : undefined;
  }

  /** The script of a pool job computing the analyses' current generations (docs/pools.md); `probe` names the job in its progress. */
  poolSql(members: Analysis[], probe?: ProgressProbe, lake?: LakeBackfill): string {
    return generatePoolSql(
      members.map((a) => ({
        id: a.id, tenantKey: this.tenants.tenantKey(a.tenantId), environment: a.environment, ...kindParamsOf(a),
        generation: a.generation, readFrom: new Date(a.readFrom ?? a.createdAt),
      })),
      this.streams,
      this.templates,
      probe,
      lake,
    );
  }

  /** The oldest time the events stream still holds (its retention, as the stream itself reports it). */
  oldestHeld(): Promise<Date> {
    return this.stream.oldestHeld(this.config.eventsStream);
  }

  /** Records a status and when it last changed. */
  setStatus(analysis: Analysis, status: AnalysisStatus, message?: string): void {
    if (analysis.status === status && analysis.statusMessage === message) return;
    const changes: Partial<Analysis> = { status, statusMessage: message };
    if (analysis.status !== status) changes.statusChangedAt = new Date().toISOString();
    this.repository.update(analysis.id, changes);
  }

  private generate(job: { id: string; tenantKey: string; definition: ValidDefinition; generation: number; readFrom: Date }): string {
    const { definition } = job;
    return generateSql(
      { id: job.id, tenantKey: job.tenantKey, environment: definition.environment, ...kindParamsOf(definition), generation: job.generation },
      this.streams,
      { at: job.readFrom },
      this.templates,
    );
  }

  private owned(tenant: Tenant, id: string): Analysis {
    const analysis = this.repository.find(tenant.id, id);
    if (!analysis) throw Problem.notFound(`Analysis ${id}`);
    return analysis;
  }
}

/** The window of an analysis in ms (every deployable kind has one). */
/** GetRecords Limit against the local emulator (see `streams`). */
const EMULATOR_RECORDS_PER_POLL = 1000;

/**
 * Each pool job polls every shard this often: the events stream has at most 2 × maxPools
 * polling readers (a pool reads twice while it hands over to a new job, docs/pools.md), and
 * Kinesis allows 5 reads a second per shard among them all.
 */
export function pollIntervalMs(maxPools: number): number {
  return 2 * maxPools * 200;
}

/** Shapes of generated scripts the planner accepted, kept in memory (a restart plans each once again). */
const MAX_VALID_SHAPES = 1000;

/** A generated script with its literals blanked: base64 strings and every number. */
export function shapeOf(sql: string): string {
  return sql.replace(/FROM_BASE64\('[A-Za-z0-9+/=]*'\)/g, 'FROM_BASE64(?)').replace(/\d+/g, '0');
}

/** A stored analysis' kind and params, as the definition check left them. */
export function kindParamsOf(a: { kind: string; params: unknown }): KindParams {
  return { kind: a.kind, params: a.params } as KindParams;
}

/**
 * Where a new (or redefined) analysis reads from: windowed kinds from the window it was
 * created in (docs/counting.md §5); cumulative ones from their creation.
 */
export function planFromCreation(createdAt: Date, definition: KindParams): RecomputePlan {
  const recompute = recomputeOf(definition);
  return recompute.type === 'windowed' ? fromCreation(createdAt, recompute.windowMs) : { readFrom: createdAt };
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export function toView(a: Analysis): AnalysisView {
  return {
    id: a.id, name: a.name, kind: a.kind, params: a.params, environment: a.environment ?? null, status: a.status,
    statusChangedAt: a.statusChangedAt, ...(a.statusMessage ? { statusMessage: a.statusMessage } : {}),
    lateEvents: a.lateEvents, lastResultAt: a.lastResultAt ?? null, pool: a.pool ?? null, createdAt: a.createdAt, updatedAt: a.updatedAt,
  };
}
