import { Inject, Injectable } from '@nestjs/common';
import { DATABASE, Db } from '../store/database';

/** A change of the pool's job in flight, written before the target is touched (docs/counting.md §6). */
export interface Operation {
  type: 'deploy' | 'stop';
  /** When it began. */
  at: string;
  /** The job name a deploy starts. */
  jobName?: string;
}

/** An analysis generation computed by a pool's job. */
export interface MemberRef {
  id: string;
  generation: number;
}

/**
 * A pool: one Flink job that computes several analyses from one read of the events stream
 * (docs/pools.md). The reconciler's unit: its job, restore point and backoff live here;
 * status and health history stay on each member analysis.
 */
export interface Pool {
  id: string;
  /** Counts fresh (stateless) deployments; part of the job name, so a Managed Flink application is one pool generation. */
  generation: number;
  /** The members of the deployed job, or of the state it left behind (checkpoint, savepoint). */
  members: MemberRef[];
  /** The deployed job's script: a restore runs exactly it again. */
  sql?: string;
  jobId?: string;
  /** The job deployed, or about to be: recorded before the target is called, so a crash mid-deploy can find it. */
  jobName?: string;
  /** The operation in flight, written before the target is touched (docs/counting.md §6). */
  operation?: Operation;
  /** The latest retained checkpoint of the job of `members`: a lost job restores from it. */
  checkpoint?: string;
  /** Taken when every member was stopped: the same members started again restore from it. */
  savepoint?: string;
  /** Consecutive failed runs or deployments; the next attempt waits longer each time. */
  failures: number;
  nextAttemptAt?: string;
  /** Since when the current job has been running without a failure. */
  runningSince?: string;
  /** When the current job was deployed without state: it has caught up once its progress passes this. */
  startedAt?: string;
  /** The current job's progress (min over the events stream's open shards), kept by the results ingestor. */
  progressAt?: string;
  /** The job the current one replaces: it serves its members until the current one has caught up. */
  previousJobId?: string;
  previousMembers?: MemberRef[];
}

export interface PoolsRepository {
  /** The pool, as stored or new (generation 0, no members). */
  get(id: string): Pool;
  all(): Pool[];
  update(id: string, changes: Partial<Omit<Pool, 'id'>>): Pool;
}
export const POOLS_REPOSITORY = Symbol('PoolsRepository');

/** `p0`, `p1`, …: the pools there may be. */
/** The catalog's pools `p0`…, then custom-sql's own `c0`… (docs/pools.md). */
export function poolIds(maxPools: number, maxCustomPools = 0): string[] {
  return [...Array.from({ length: maxPools }, (_, i) => `p${i}`), ...Array.from({ length: maxCustomPools }, (_, i) => `c${i}`)];
}

/** A custom-sql pool: its job runs with the custom-sql limits (state TTL, parallelism 1). */
export function isCustomPool(id: string): boolean {
  return id.startsWith('c');
}

interface Row {
  id: string; generation: number; members: string; sql: string | null; job_id: string | null; job_name: string | null;
  operation: string | null; checkpoint: string | null; savepoint: string | null; failures: number; next_attempt_at: string | null;
  running_since: string | null; started_at: string | null; progress_at: string | null; previous_job_id: string | null;
  previous_members: string | null;
}

const COLUMNS: Record<keyof Omit<Pool, 'id'>, keyof Row> = {
  generation: 'generation', members: 'members', sql: 'sql', jobId: 'job_id', jobName: 'job_name', operation: 'operation',
  checkpoint: 'checkpoint', savepoint: 'savepoint', failures: 'failures', nextAttemptAt: 'next_attempt_at', runningSince: 'running_since',
  startedAt: 'started_at', progressAt: 'progress_at', previousJobId: 'previous_job_id', previousMembers: 'previous_members',
};
const JSON_FIELDS = new Set(['members', 'operation', 'previousMembers']);

function toPool(r: Row): Pool {
  return {
    id: r.id, generation: r.generation, members: JSON.parse(r.members) as MemberRef[], sql: r.sql ?? undefined, jobId: r.job_id ?? undefined,
    jobName: r.job_name ?? undefined, operation: r.operation ? (JSON.parse(r.operation) as Operation) : undefined,
    checkpoint: r.checkpoint ?? undefined, savepoint: r.savepoint ?? undefined, failures: r.failures,
    nextAttemptAt: r.next_attempt_at ?? undefined, runningSince: r.running_since ?? undefined, startedAt: r.started_at ?? undefined,
    progressAt: r.progress_at ?? undefined, previousJobId: r.previous_job_id ?? undefined,
    previousMembers: r.previous_members ? (JSON.parse(r.previous_members) as MemberRef[]) : undefined,
  };
}

@Injectable()
export class SqlitePoolsRepository implements PoolsRepository {
  constructor(@Inject(DATABASE) private readonly db: Db) {}

  get(id: string): Pool {
    const row = this.db.prepare('SELECT * FROM pools WHERE id = ?').get(id) as Row | undefined;
    return row ? toPool(row) : { id, generation: 0, members: [], failures: 0 };
  }

  all(): Pool[] {
    return (this.db.prepare('SELECT * FROM pools ORDER BY id').all() as Row[]).map(toPool);
  }

  update(id: string, changes: Partial<Omit<Pool, 'id'>>): Pool {
    this.db.prepare('INSERT INTO pools (id) VALUES (?) ON CONFLICT (id) DO NOTHING').run(id);
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [field, value] of Object.entries(changes)) {
      const column = COLUMNS[field as keyof typeof COLUMNS];
      if (!column) throw new Error(`cannot update pool field ${field}`);
      sets.push(`${column} = ?`);
      values.push(JSON_FIELDS.has(field) && value !== undefined ? JSON.stringify(value) : (value ?? null));
    }
    if (sets.length) this.db.prepare(`UPDATE pools SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
    return this.get(id);
  }
}
