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
  maxBodyBytes: number;
  writeDeadlineMs: number;
  maxAnalysesPerTenant: number;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
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
    maxBodyBytes: int(env, 'FLAGSTREAM_MAX_BODY_BYTES', 16 * 1024 * 1024),
    writeDeadlineMs: int(env, 'FLAGSTREAM_WRITE_DEADLINE_MS', 20000),
    maxAnalysesPerTenant: int(env, 'FLAGSTREAM_MAX_ANALYSES_PER_TENANT', 20),
  };
}

export const CONFIG = Symbol('CONFIG');
