import { join, resolve } from 'node:path';

/**
 * Every setting of the control plane, read once from the environment.
 * The README's settings table lists the same names; keep them in step.
 */
export interface Config {
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
  writeDeadlineMs: number;
  maxAnalysesPerTenant: number;
  /** First wait before a failed job is deployed again; it doubles with every consecutive failure. */
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
  /** Where the local Flink cluster keeps its checkpoints (a forgotten job restores from the last one); absent for remote clusters. */
  flinkCheckpointsDir?: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const repoRoot = resolve(__dirname, '..', '..', '..');
  const dataDir = resolve(env.FLAGSTREAM_DATA_DIR || join(repoRoot, '.flagstream'));
  return {
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 8080),
    dataDir,
    adminKey: env.FLAGSTREAM_ADMIN_KEY || undefined,
    awsRegion: env.AWS_REGION || 'us-east-1',
    kinesisEndpoint: env.FLAGSTREAM_KINESIS_ENDPOINT || undefined,
    eventsStream: env.FLAGSTREAM_EVENTS_STREAM || 'flagstream-events',
    resultsStream: env.FLAGSTREAM_RESULTS_STREAM || 'flagstream-results',
    createStreams: (env.FLAGSTREAM_CREATE_STREAMS ?? 'true') !== 'false',
    streamShards: int(env, 'FLAGSTREAM_STREAM_SHARDS', 2),
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
    writeDeadlineMs: int(env, 'FLAGSTREAM_WRITE_DEADLINE_MS', 20000),
    maxAnalysesPerTenant: int(env, 'FLAGSTREAM_MAX_ANALYSES_PER_TENANT', 20),
    restartBackoffMs: int(env, 'FLAGSTREAM_RESTART_BACKOFF_MS', 10_000),
    restartBackoffMaxMs: int(env, 'FLAGSTREAM_RESTART_BACKOFF_MAX_MS', 300_000),
    flinkCheckpointsDir: env.FLAGSTREAM_FLINK_CHECKPOINTS_DIR === '' ? undefined : resolve(env.FLAGSTREAM_FLINK_CHECKPOINTS_DIR ?? join(dataDir, 'flink', 'checkpoints')),
  };
}

export const CONFIG = Symbol('CONFIG');
