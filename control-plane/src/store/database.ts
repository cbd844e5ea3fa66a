import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const DATABASE = Symbol('DATABASE');
export type Db = Database.Database;

/** Versioned schema of the embedded store; append, never edit, a migration. */
const MIGRATIONS: string[] = [
  `CREATE TABLE tenants (
     id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
     api_key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
   CREATE TABLE environments (
     id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
     key TEXT NOT NULL, sdk_key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
     UNIQUE (tenant_id, key));
   CREATE TABLE payloads (
     tenant_id TEXT NOT NULL, environment_id TEXT NOT NULL, payload_id TEXT NOT NULL,
     event_count INTEGER NOT NULL, written TEXT NOT NULL, complete INTEGER NOT NULL DEFAULT 0,
     response TEXT, received_at INTEGER NOT NULL,
     PRIMARY KEY (tenant_id, environment_id, payload_id));
   CREATE INDEX payloads_received_at ON payloads(received_at);
   CREATE TABLE analyses (
     id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
     name TEXT NOT NULL, kind TEXT NOT NULL, params TEXT NOT NULL, environment TEXT,
     status TEXT NOT NULL, desired_state TEXT NOT NULL, status_changed_at TEXT NOT NULL,
     status_message TEXT, job_id TEXT, savepoint TEXT, results_from TEXT, sql TEXT NOT NULL,
     created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
   CREATE INDEX analyses_tenant ON analyses(tenant_id, created_at);
   CREATE TABLE results (
     analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
     window_start TEXT NOT NULL, dims TEXT NOT NULL, row TEXT NOT NULL,
     PRIMARY KEY (analysis_id, window_start, dims));
   CREATE TABLE stream_checkpoints (stream TEXT NOT NULL, shard_id TEXT NOT NULL, sequence_number TEXT NOT NULL,
     PRIMARY KEY (stream, shard_id));`,
  // The trust issue (docs/counting.md): generations, the reconciler's intent and backoff,
  // results with versions, job progress, late events and the health history.
  `ALTER TABLE analyses ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE analyses ADD COLUMN read_from TEXT;
   ALTER TABLE analyses ADD COLUMN job_name TEXT;
   ALTER TABLE analyses ADD COLUMN operation TEXT;
   ALTER TABLE analyses ADD COLUMN checkpoint TEXT;
   ALTER TABLE analyses ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE analyses ADD COLUMN next_attempt_at TEXT;
   ALTER TABLE analyses ADD COLUMN running_since TEXT;
   ALTER TABLE analyses ADD COLUMN progress_at TEXT;
   ALTER TABLE analyses ADD COLUMN late_events INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE analyses ADD COLUMN last_result_at TEXT;
   ALTER TABLE results ADD COLUMN window_end TEXT;
   ALTER TABLE results ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE results ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE results ADD COLUMN updated_at TEXT;
   CREATE TABLE result_progress (
     analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE, shard TEXT NOT NULL,
     generation INTEGER NOT NULL, progress_at TEXT NOT NULL, PRIMARY KEY (analysis_id, shard));
   CREATE TABLE late_buckets (
     analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE, bucket_start TEXT NOT NULL,
     generation INTEGER NOT NULL, late_events INTEGER NOT NULL, PRIMARY KEY (analysis_id, bucket_start));
   CREATE TABLE health_history (
     id INTEGER PRIMARY KEY AUTOINCREMENT, analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
     at TEXT NOT NULL, status TEXT NOT NULL, reason TEXT);
   CREATE INDEX health_history_analysis ON health_history(analysis_id, id);`,
  // Pools (docs/pools.md): analyses share jobs. The reconciler's job, operation, restore
  // point and backoff move from the analysis to its pool; a pool's previous job serves its
  // members until the new one caught up (pool_progress); a new generation's rows wait in
  // pending_rows until that generation has caught up with the one it replaces.
  `CREATE TABLE pools (
     id TEXT PRIMARY KEY, generation INTEGER NOT NULL DEFAULT 0, members TEXT NOT NULL DEFAULT '[]', sql TEXT,
     job_id TEXT, job_name TEXT, operation TEXT, checkpoint TEXT, savepoint TEXT,
     failures INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, running_since TEXT,
     started_at TEXT, progress_at TEXT, previous_job_id TEXT, previous_members TEXT);
   CREATE TABLE pool_progress (
     pool TEXT NOT NULL, shard TEXT NOT NULL, generation INTEGER NOT NULL, progress_at TEXT NOT NULL,
     PRIMARY KEY (pool, shard));
   ALTER TABLE analyses ADD COLUMN pool TEXT;
   ALTER TABLE analyses ADD COLUMN generation_started_at TEXT;
   CREATE TABLE pending_rows (
     analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
     window_start TEXT NOT NULL, dims TEXT NOT NULL, row TEXT NOT NULL, window_end TEXT NOT NULL,
     generation INTEGER NOT NULL, version INTEGER NOT NULL,
     PRIMARY KEY (analysis_id, window_start, dims));`,
  // Guardrails (CONTRACT §6): the status last seen and since when, and the webhook delivery of
  // a turn to regressed, retried until answered 2xx (also across a restart).
  `CREATE TABLE guardrail_states (
     analysis_id TEXT PRIMARY KEY REFERENCES analyses(id) ON DELETE CASCADE,
     generation INTEGER NOT NULL, status TEXT NOT NULL, since TEXT NOT NULL, row TEXT NOT NULL,
     evaluated_result_at TEXT, webhook_payload TEXT, webhook_attempts INTEGER NOT NULL DEFAULT 0, webhook_next_at TEXT);`,
  // custom-sql rows: the query's result as a multiset per generation (an insert adds a row, a
  // retraction removes one); a generation is served once it has caught up, the one before it
  // until then.
  `CREATE TABLE custom_rows (
     analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
     generation INTEGER NOT NULL, row_key TEXT NOT NULL, row TEXT NOT NULL, window_start TEXT NOT NULL, count INTEGER NOT NULL,
     PRIMARY KEY (analysis_id, generation, row_key));`,
  // The local data lake (control-plane/src/lake): the manifest of committed files (readers trust
  // only these), the keys of the events they hold (a record the stream delivers twice lands
  // once; a 16-byte hash, pruned by receive time), and files being written, not yet committed
  // (what a crash between rename and commit leaves behind is deleted at the next start). Its
  // stream positions go to stream_checkpoints under `lake:<events stream>`.
  `CREATE TABLE lake_files (
     id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, hour_start INTEGER NOT NULL,
     records INTEGER NOT NULL, bytes INTEGER NOT NULL, min_received_at INTEGER NOT NULL, max_received_at INTEGER NOT NULL,
     written_at INTEGER NOT NULL);
   CREATE INDEX lake_files_tenant_hour ON lake_files(tenant, hour_start);
   CREATE TABLE lake_keys (key_hash BLOB PRIMARY KEY, received_at INTEGER NOT NULL, file_id INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX lake_keys_received_at ON lake_keys(received_at);
   CREATE TABLE lake_pending_files (path TEXT PRIMARY KEY);`,
  // Since when the local lake holds every accepted event: what the events stream held when the
  // lake writer first read it (from its oldest record on). A replay may reach back that far.
  `CREATE TABLE lake_coverage (id INTEGER PRIMARY KEY CHECK (id = 1), covered_from INTEGER NOT NULL);`,
];

export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'flagstream.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let i = version; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[i]);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
  cachePreparedStatements(db);
  return db;
}

/**
 * Makes `db.prepare` answer the same statement for the same SQL: repositories prepare where they
 * query, and preparing costs more than running the short queries of the API's hot paths (every
 * request's key lookup). A statement is only ever run to completion (none is iterated), so one
 * statement can serve every caller of its SQL.
 */
const MAX_CACHED_STATEMENTS = 1000;

function cachePreparedStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  const statements = new Map<string, Database.Statement>();
  db.prepare = ((source: string) => {
    let statement = statements.get(source);
    if (!statement) {
      statement = prepare(source);
      // SQL is written in the code (an UPDATE's SET list varies with the fields changed): a few hundred at most.
      if (statements.size < MAX_CACHED_STATEMENTS) statements.set(source, statement);
    }
    return statement;
  }) as Db['prepare'];
}
