import { join, resolve } from 'node:path';

/**
 * Every setting of the control plane, read once from the environment.
 * The README's settings table lists the same names; keep them in step.
 */
/** CONTRACT §8: where analyses run. */
export type Target = 'local' | 'flink' | 'managed-flink';
export const TARGETS: Target[] = ['local', 'flink', 'managed-flink'];

/** The `managed-flink` target's settings (CONTRACT §8); the AWS SDK reads region, credentials and endpoints itself. */
export interface ManagedFlinkSettings {
  /** FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: the applications' service execution role. */
  roleArn: string;
  /** FLAGSTREAM_MANAGED_FLINK_CODE (`s3://bucket/key` of the runner JAR) as the API takes it. */
  code: { bucketArn: string; fileKey: string };
  /** FLAGSTREAM_EVENTS_STREAM_ARN / FLAGSTREAM_RESULTS_STREAM_ARN: the streams the applications read and write. */
  eventsStreamArn: string;
  resultsStreamArn: string;
}

export interface Config {
  /** FLAGSTREAM_TARGET: `local` (the cluster `npm start` runs), `flink` (any cluster at flinkRestUrl) or `managed-flink`. */
  target: Target;
  /** Set when the target is `managed-flink`. */
  managedFlink?: ManagedFlinkSettings;
  host: string;
  port: number;
  dataDir: string;
  adminKey?: string;
  awsRegion: string;
  kinesisEndpoint?: string;
  eventsStream: string;
  resultsStream: string;
  createStreams: boolean;
  streamShards: number;
  /** Shards of a created results stream: every pool job writes its rows there, partitioned by analysis. */
  resultsShards: number;
  streamRetentionHours: number;
  flinkRestUrl: string;
  validatorUrl: string;
  runnerJar: string;
  healthIntervalMs: number;
  heartbeatIntervalMs: number;
  resultsPollMs: number;
  allowedLatenessSeconds: number;
  /** FLAGSTREAM_LATENESS_HORIZON: an event whose SDK time is older than receivedAt minus this is `late` (docs/counting.md §1). */
  latenessHorizonSeconds: number;
  maxBodyBytes: number;
  /** FLAGSTREAM_WRITE_DEADLINE_MS: a payload the stream has not taken whole by then is answered 503 with Retry-After. */
  writeDeadlineMs: number;
  /** FLAGSTREAM_STREAM_RECORD_BYTES: events are packed into aggregated Kinesis records of at most this size. */
  streamRecordBytes: number;
  /** FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES: records waiting for or in a PutRecords call; a payload past it waits for room, up to its deadline. */
  ingestMaxInflightBytes: number;
  /** FLAGSTREAM_STREAM_WRITE_CONCURRENCY: PutRecords calls to the events stream at once. */
  streamWriteConcurrency: number;
  maxAnalysesPerTenant: number;
  /**
   * FLAGSTREAM_MAX_POOLS: analyses share this many jobs (docs/pools.md), so the events stream
   * has this many readers however many analyses run (twice as many while every pool hands
   * over to a new job). At most 9: Kinesis takes 20 enhanced fan-out consumers (the lake's
   * transform is one more reader); polling readers share 5 reads a second per shard.
   */
  maxPools: number;
  /**
   * FLAGSTREAM_MAX_CUSTOM_POOLS: custom-sql analyses run in pools of their own (`c0`, …), apart
   * from the catalog's, each job with a bounded state TTL and parallelism 1, so one query cannot
   * starve the others. Counted with maxPools in the 20 readers: maxPools + this ≤ 9 (the lake
   * reads too); default min(2, 9 − maxPools); 0 refuses custom-sql.
   */
  maxCustomPools: number;
  /** FLAGSTREAM_CUSTOM_SQL_STATE_TTL: every state of a custom-sql pool's job expires this long after its last use. */
  customSqlStateTtlSeconds: number;
  /** FLAGSTREAM_CUSTOM_SQL_MAX_ROWS: most distinct rows a custom-sql analysis' result keeps. */
  customSqlMaxRows: number;
  /** First wait before a failed job is deployed again; it doubles with every consecutive failure. */
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
  /** Where the local Flink cluster keeps its checkpoints (a forgotten job restores from the last one); absent for other targets unless set. */
  flinkCheckpointsDir?: string;
  /** FLAGSTREAM_LAKE: the local lake writer (CONTRACT §9) runs unless `off` (e.g. where the CDK app's Lambda fills the lake). */
  lakeEnabled: boolean;
  /** FLAGSTREAM_LAKE_DIR: the local lake's root (`tenant=…/dt=…/hour=…/` below it). */
  lakeDir: string;
  /** FLAGSTREAM_LAKE_FLUSH_MS: how often the lake writer commits what it read (also sooner, when its buffer is full). */
  lakeFlushMs: number;
  /**
   * FLAGSTREAM_JOB_NAME_PREFIX: the start of every job (and Managed Flink application) name;
   * jobs named otherwise are never this control plane's, so control planes with different
   * prefixes can share a Flink cluster or an AWS account.
   */
  jobNamePrefix: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function jobNamePrefix(env: NodeJS.ProcessEnv): string {
  const value = env.FLAGSTREAM_JOB_NAME_PREFIX ?? 'flagstream-';
  // A Managed Flink application name takes [a-zA-Z0-9_.-]; the rest of the name is about 30 characters.
  if (!/^[a-z][a-z0-9-]{0,38}-$/.test(value)) {
    throw new Error(`FLAGSTREAM_JOB_NAME_PREFIX must be lowercase letters, digits and dashes, start with a letter and end with a dash (at most 40), got ${JSON.stringify(value)}`);
  }
  return value;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = int(env, name, fallback);
  if (value < 1) throw new Error(`${name} must be a positive integer, got "${env[name]}"`);
  return value;
}

function boundedInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const value = int(env, name, fallback);
  if (value < min || value > max) throw new Error(`${name} must be between ${min} and ${max}, got "${env[name]}"`);
  return value;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration such as `90s`, `30m`, `1h` or `2d`, in whole seconds (at least 1 s). */
export function parseDurationSeconds(raw: string): number | undefined {
  const match = /^\s*(\d{1,9})\s*([smhd])\s*$/.exec(raw);
  if (!match) return undefined;
  const seconds = Number(match[1]) * DURATION_UNITS[match[2]];
  return seconds >= 1 ? seconds : undefined;
}

function duration(env: NodeJS.ProcessEnv, name: string, fallback: string): number {
  const raw = env[name];
  const value = parseDurationSeconds(raw === undefined || raw === '' ? fallback : raw);
  if (value === undefined) throw new Error(`${name} must be a duration such as "90s", "30m", "1h" or "2d" (at least 1s), got "${raw}"`);
  return value;
}

const KINESIS_STREAM_ARN = /^arn:(aws[a-z-]*):kinesis:([a-z0-9-]+):(\d{12}):stream\/([a-zA-Z0-9_.-]{1,128})$/;
const IAM_ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/[\w+=,.@\/-]{1,512}$/;
const S3_OBJECT = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.{1,1024})$/;

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (raw === 'on' || raw === 'true') return true;
  if (raw === 'off' || raw === 'false') return false;
  throw new Error(`${name} must be "on" or "off", got "${env[name]}"`);
}

function target(env: NodeJS.ProcessEnv): Target {
  const raw = env.FLAGSTREAM_TARGET || 'local';
  if (!(TARGETS as string[]).includes(raw)) throw new Error(`FLAGSTREAM_TARGET must be one of ${TARGETS.join(', ')}, got "${raw}"`);
  return raw as Target;
}

/**
 * The streams' names: FLAGSTREAM_EVENTS_STREAM / FLAGSTREAM_RESULTS_STREAM, or on `managed-flink`
 * the name in the stream's ARN (both given: they must agree).
 */
function streamName(env: NodeJS.ProcessEnv, name: 'EVENTS' | 'RESULTS', fallback: string, region: string, managed: boolean): { name: string; arn?: string } {
  const given = env[`FLAGSTREAM_${name}_STREAM`] || undefined;
  if (!managed) return { name: given ?? fallback };
  const setting = `FLAGSTREAM_${name}_STREAM_ARN`;
  const arn = env[setting] || undefined;
  if (!arn) throw new Error(`${setting} must be set when FLAGSTREAM_TARGET is managed-flink (the ARN of the ${name.toLowerCase()} stream, arn:aws:kinesis:<region>:<account>:stream/<name>)`);
  const match = KINESIS_STREAM_ARN.exec(arn);
  if (!match) throw new Error(`${setting} must be a Kinesis stream ARN such as arn:aws:kinesis:us-east-1:123456789012:stream/flagstream-${name.toLowerCase()}, got "${arn}"`);
  if (match[2] !== region) throw new Error(`${setting} is a stream in ${match[2]}, but AWS_REGION is ${region}: the applications read and write the streams of their own region`);
  if (given !== undefined && given !== match[4]) throw new Error(`${setting} names the stream "${match[4]}", but FLAGSTREAM_${name}_STREAM is "${given}"`);
  return { name: match[4], arn };
}

function managedFlinkSettings(env: NodeJS.ProcessEnv, events: string, results: string): ManagedFlinkSettings {
  const roleArn = env.FLAGSTREAM_MANAGED_FLINK_ROLE_ARN || undefined;
  if (!roleArn) throw new Error('FLAGSTREAM_MANAGED_FLINK_ROLE_ARN must be set when FLAGSTREAM_TARGET is managed-flink (the applications\' service execution role)');
  const role = IAM_ROLE_ARN.exec(roleArn);
  if (!role) throw new Error(`FLAGSTREAM_MANAGED_FLINK_ROLE_ARN must be an IAM role ARN such as arn:aws:iam::123456789012:role/flagstream-flink, got "${roleArn}"`);
  const codeUrl = env.FLAGSTREAM_MANAGED_FLINK_CODE || undefined;
  if (!codeUrl) throw new Error('FLAGSTREAM_MANAGED_FLINK_CODE must be set when FLAGSTREAM_TARGET is managed-flink (s3://bucket/key of the runner JAR)');
  const code = S3_OBJECT.exec(codeUrl);
  if (!code) throw new Error(`FLAGSTREAM_MANAGED_FLINK_CODE must be s3://<bucket>/<key> of the runner JAR, got "${codeUrl}"`);
  return { roleArn, code: { bucketArn: `arn:${role[1]}:s3:::${code[1]}`, fileKey: code[2] }, eventsStreamArn: events, resultsStreamArn: results };
}

/**
 * Readers of the events stream that are not pools: the data lake's transform (on AWS the lake
 * Lambda's enhanced fan-out consumer, cdk/lib/lake.ts; locally the lake writer).
 */
export const OTHER_EVENT_READERS = 1;
const MAX_READERS = 20;

/**
 * While a pool's new job catches up, the job it replaces still reads (docs/pools.md): a pool
 * is up to two readers, so at most (20 − other readers) / 2 pools.
 */
function maxPools(env: NodeJS.ProcessEnv): number {
  const value = int(env, 'FLAGSTREAM_MAX_POOLS', 8);
  const most = Math.floor((MAX_READERS - OTHER_EVENT_READERS) / 2);
  if (value < 1 || value > most) throw new Error(`FLAGSTREAM_MAX_POOLS must be between 1 and ${most} (the events stream takes at most ${MAX_READERS} readers, and a pool that changes reads twice until its new job caught up), got "${env.FLAGSTREAM_MAX_POOLS}"`);
  return value;
}

function maxCustomPools(env: NodeJS.ProcessEnv, pools: number): number {
  const most = Math.floor((MAX_READERS - OTHER_EVENT_READERS) / 2) - pools;
  const value = int(env, 'FLAGSTREAM_MAX_CUSTOM_POOLS', Math.min(2, most));
  if (value > most) throw new Error(`FLAGSTREAM_MAX_CUSTOM_POOLS + FLAGSTREAM_MAX_POOLS must be at most ${most + pools} (the events stream takes at most ${MAX_READERS} readers, two per changing pool), got ${value} + ${pools}`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const repoRoot = resolve(__dirname, '..', '..', '..');
  const dataDir = resolve(env.FLAGSTREAM_DATA_DIR || join(repoRoot, '.flagstream'));
  const where = target(env);
  const awsRegion = env.AWS_REGION || 'us-east-1';
  const managed = where === 'managed-flink';
  const events = streamName(env, 'EVENTS', 'flagstream-events', awsRegion, managed);
  const results = streamName(env, 'RESULTS', 'flagstream-results', awsRegion, managed);
  // The local cluster's checkpoints are on this machine's disk; another cluster's only when said so.
  const checkpointsDir = env.FLAGSTREAM_FLINK_CHECKPOINTS_DIR ?? (where === 'local' ? join(dataDir, 'flink', 'checkpoints') : '');
  return {
    target: where,
    managedFlink: managed ? managedFlinkSettings(env, events.arn!, results.arn!) : undefined,
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 8080),
    dataDir,
    adminKey: env.FLAGSTREAM_ADMIN_KEY || undefined,
    awsRegion,
    kinesisEndpoint: env.FLAGSTREAM_KINESIS_ENDPOINT || undefined,
    eventsStream: events.name,
    resultsStream: results.name,
    createStreams: (env.FLAGSTREAM_CREATE_STREAMS ?? 'true') !== 'false',
    streamShards: int(env, 'FLAGSTREAM_STREAM_SHARDS', 2),
    resultsShards: int(env, 'FLAGSTREAM_RESULTS_SHARDS', 4),
    streamRetentionHours: int(env, 'FLAGSTREAM_STREAM_RETENTION_HOURS', 24),
    flinkRestUrl: (env.FLAGSTREAM_FLINK_URL || 'http://127.0.0.1:8081').replace(/\/$/, ''),
    validatorUrl: (env.FLAGSTREAM_VALIDATOR_URL || 'http://127.0.0.1:8082').replace(/\/$/, ''),
    runnerJar: resolve(env.FLAGSTREAM_RUNNER_JAR || join(repoRoot, 'flink-sql/runner/target/flagstream-runner.jar')),
    healthIntervalMs: int(env, 'FLAGSTREAM_HEALTH_INTERVAL_MS', 3000),
    heartbeatIntervalMs: int(env, 'FLAGSTREAM_HEARTBEAT_INTERVAL_MS', 2000),
    resultsPollMs: int(env, 'FLAGSTREAM_RESULTS_POLL_MS', 1000),
    allowedLatenessSeconds: int(env, 'FLAGSTREAM_ALLOWED_LATENESS_SECONDS', 5),
    latenessHorizonSeconds: duration(env, 'FLAGSTREAM_LATENESS_HORIZON', '1h'),
    maxBodyBytes: int(env, 'FLAGSTREAM_MAX_BODY_BYTES', 16 * 1024 * 1024),
    writeDeadlineMs: positiveInt(env, 'FLAGSTREAM_WRITE_DEADLINE_MS', 20000),
    streamRecordBytes: boundedInt(env, 'FLAGSTREAM_STREAM_RECORD_BYTES', 16 * 1024, 4 * 1024, 1000 * 1024),
    ingestMaxInflightBytes: boundedInt(env, 'FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES', 64 * 1024 * 1024, 1024 * 1024, 4 * 1024 * 1024 * 1024),
    streamWriteConcurrency: boundedInt(env, 'FLAGSTREAM_STREAM_WRITE_CONCURRENCY', 4, 1, 64),
    maxAnalysesPerTenant: int(env, 'FLAGSTREAM_MAX_ANALYSES_PER_TENANT', 20),
    maxPools: maxPools(env),
    maxCustomPools: maxCustomPools(env, maxPools(env)),
    customSqlStateTtlSeconds: duration(env, 'FLAGSTREAM_CUSTOM_SQL_STATE_TTL', '1h'),
    customSqlMaxRows: int(env, 'FLAGSTREAM_CUSTOM_SQL_MAX_ROWS', 100_000),
    restartBackoffMs: int(env, 'FLAGSTREAM_RESTART_BACKOFF_MS', 10_000),
    restartBackoffMaxMs: int(env, 'FLAGSTREAM_RESTART_BACKOFF_MAX_MS', 300_000),
    flinkCheckpointsDir: checkpointsDir === '' ? undefined : resolve(checkpointsDir),
    lakeEnabled: onOff(env, 'FLAGSTREAM_LAKE', true),
    lakeDir: resolve(env.FLAGSTREAM_LAKE_DIR || join(dataDir, 'lake')),
    lakeFlushMs: positiveInt(env, 'FLAGSTREAM_LAKE_FLUSH_MS', 10_000),
    jobNamePrefix: jobNamePrefix(env),
  };
}

export const CONFIG = Symbol('CONFIG');
