import { loadConfig, parseDurationSeconds } from './config';

describe('FLAGSTREAM_LATENESS_HORIZON', () => {
  it('defaults to 1h', () => {
    expect(loadConfig({}).latenessHorizonSeconds).toBe(3600);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '' }).latenessHorizonSeconds).toBe(3600);
  });

  it('takes durations in s, m, h and d', () => {
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '90s' }).latenessHorizonSeconds).toBe(90);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '30m' }).latenessHorizonSeconds).toBe(1800);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '2h' }).latenessHorizonSeconds).toBe(7200);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '1d' }).latenessHorizonSeconds).toBe(86400);
    expect(parseDurationSeconds(' 1h ')).toBe(3600);
  });

  it('refuses anything else with an error naming the setting and the value', () => {
    for (const bad of ['1', '1 hour', '-1h', '0s', '1.5h', 'h', '1H', '1w', '1h30m']) {
      expect(() => loadConfig({ FLAGSTREAM_LATENESS_HORIZON: bad })).toThrow(`FLAGSTREAM_LATENESS_HORIZON must be a duration such as "90s", "30m", "1h" or "2d" (at least 1s), got "${bad}"`);
    }
  });
});

describe('FLAGSTREAM_TARGET (CONTRACT §8)', () => {
  const managed = {
    FLAGSTREAM_TARGET: 'managed-flink',
    AWS_REGION: 'eu-west-1',
    FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: 'arn:aws:iam::123456789012:role/flagstream-flink',
    FLAGSTREAM_MANAGED_FLINK_CODE: 's3://flagstream-code/runner/flagstream-runner.jar',
    FLAGSTREAM_EVENTS_STREAM_ARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/events-prod',
    FLAGSTREAM_RESULTS_STREAM_ARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/results-prod',
  };

  it('defaults to local, with the local cluster\'s checkpoints; flink has none unless set', () => {
    expect(loadConfig({ FLAGSTREAM_DATA_DIR: '/d' })).toMatchObject({ target: 'local', flinkCheckpointsDir: '/d/flink/checkpoints', managedFlink: undefined });
    expect(loadConfig({ FLAGSTREAM_TARGET: 'flink' }).flinkCheckpointsDir).toBeUndefined();
    expect(loadConfig({ FLAGSTREAM_TARGET: 'flink', FLAGSTREAM_FLINK_CHECKPOINTS_DIR: '/shared/chk' }).flinkCheckpointsDir).toBe('/shared/chk');
    expect(loadConfig({ FLAGSTREAM_FLINK_CHECKPOINTS_DIR: '' }).flinkCheckpointsDir).toBeUndefined();
    expect(() => loadConfig({ FLAGSTREAM_TARGET: 'kubernetes' })).toThrow('FLAGSTREAM_TARGET must be one of local, flink, managed-flink, got "kubernetes"');
  });

  it('managed-flink: the role, the code location as the API takes it, and the streams named by their ARNs', () => {
    const config = loadConfig(managed);
    expect(config).toMatchObject({ target: 'managed-flink', eventsStream: 'events-prod', resultsStream: 'results-prod', awsRegion: 'eu-west-1' });
    expect(config.managedFlink).toEqual({
      roleArn: managed.FLAGSTREAM_MANAGED_FLINK_ROLE_ARN,
      code: { bucketArn: 'arn:aws:s3:::flagstream-code', fileKey: 'runner/flagstream-runner.jar' },
      eventsStreamArn: managed.FLAGSTREAM_EVENTS_STREAM_ARN,
      resultsStreamArn: managed.FLAGSTREAM_RESULTS_STREAM_ARN,
    });
    expect(loadConfig({ ...managed, FLAGSTREAM_EVENTS_STREAM: 'events-prod' }).eventsStream).toBe('events-prod');
  });

  it('managed-flink: a clear error for each setting missing or wrong', () => {
    const without = (name: keyof typeof managed) => {
      const env: Record<string, string> = { ...managed };
      delete env[name];
      return () => loadConfig(env);
    };
    expect(without('FLAGSTREAM_MANAGED_FLINK_ROLE_ARN')).toThrow(/^FLAGSTREAM_MANAGED_FLINK_ROLE_ARN must be set when FLAGSTREAM_TARGET is managed-flink/);
    expect(without('FLAGSTREAM_MANAGED_FLINK_CODE')).toThrow(/^FLAGSTREAM_MANAGED_FLINK_CODE must be set/);
    expect(without('FLAGSTREAM_EVENTS_STREAM_ARN')).toThrow(/^FLAGSTREAM_EVENTS_STREAM_ARN must be set/);
    expect(without('FLAGSTREAM_RESULTS_STREAM_ARN')).toThrow(/^FLAGSTREAM_RESULTS_STREAM_ARN must be set/);
    expect(() => loadConfig({ ...managed, FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: 'flagstream-flink' })).toThrow('FLAGSTREAM_MANAGED_FLINK_ROLE_ARN must be an IAM role ARN');
    expect(() => loadConfig({ ...managed, FLAGSTREAM_MANAGED_FLINK_CODE: 'https://bucket/key.jar' })).toThrow('FLAGSTREAM_MANAGED_FLINK_CODE must be s3://<bucket>/<key> of the runner JAR, got "https://bucket/key.jar"');
    expect(() => loadConfig({ ...managed, FLAGSTREAM_EVENTS_STREAM_ARN: 'events-prod' })).toThrow('FLAGSTREAM_EVENTS_STREAM_ARN must be a Kinesis stream ARN');
    expect(() => loadConfig({ ...managed, AWS_REGION: 'us-east-1' })).toThrow('FLAGSTREAM_EVENTS_STREAM_ARN is a stream in eu-west-1, but AWS_REGION is us-east-1');
    expect(() => loadConfig({ ...managed, FLAGSTREAM_RESULTS_STREAM: 'other' })).toThrow('FLAGSTREAM_RESULTS_STREAM_ARN names the stream "results-prod", but FLAGSTREAM_RESULTS_STREAM is "other"');
    // Not needed by the other targets.
    expect(() => loadConfig({ FLAGSTREAM_TARGET: 'flink' })).not.toThrow();
  });
});

describe('the local lake (FLAGSTREAM_LAKE, FLAGSTREAM_LAKE_DIR, FLAGSTREAM_LAKE_FLUSH_MS)', () => {
  it('is on by default, under <data dir>/lake, committed every 10 s', () => {
    expect(loadConfig({ FLAGSTREAM_DATA_DIR: '/d' })).toMatchObject({ lakeEnabled: true, lakeDir: '/d/lake', lakeFlushMs: 10_000 });
    expect(loadConfig({ FLAGSTREAM_LAKE: '' }).lakeEnabled).toBe(true);
  });

  it('takes on and off, another directory and another interval', () => {
    expect(loadConfig({ FLAGSTREAM_LAKE: 'off' }).lakeEnabled).toBe(false);
    expect(loadConfig({ FLAGSTREAM_LAKE: 'on' }).lakeEnabled).toBe(true);
    expect(loadConfig({ FLAGSTREAM_DATA_DIR: '/d', FLAGSTREAM_LAKE_DIR: '/lake' }).lakeDir).toBe('/lake');
    expect(loadConfig({ FLAGSTREAM_LAKE_FLUSH_MS: '500' }).lakeFlushMs).toBe(500);
  });

  it('refuses anything else with an error naming the setting', () => {
    expect(() => loadConfig({ FLAGSTREAM_LAKE: 'maybe' })).toThrow('FLAGSTREAM_LAKE must be "on" or "off", got "maybe"');
    expect(() => loadConfig({ FLAGSTREAM_LAKE_FLUSH_MS: '0' })).toThrow('FLAGSTREAM_LAKE_FLUSH_MS must be a positive integer, got "0"');
    expect(() => loadConfig({ FLAGSTREAM_LAKE_FLUSH_MS: '1s' })).toThrow('FLAGSTREAM_LAKE_FLUSH_MS must be a non-negative integer');
  });
});

describe('FLAGSTREAM_JOB_NAME_PREFIX', () => {
  it('names jobs flagstream-… by default, or with a prefix of its own so control planes can share a cluster', () => {
    expect(loadConfig({}).jobNamePrefix).toBe('flagstream-');
    expect(loadConfig({ FLAGSTREAM_JOB_NAME_PREFIX: 'backfill-test-' }).jobNamePrefix).toBe('backfill-test-');
  });

  it('refuses a prefix that cannot start a Managed Flink application name, or that runs into the pool name', () => {
    for (const value of ['', 'Flagstream-', 'flagstream', '1x-', 'a b-', `${'a'.repeat(40)}-`]) {
      expect(() => loadConfig({ FLAGSTREAM_JOB_NAME_PREFIX: value })).toThrow(/FLAGSTREAM_JOB_NAME_PREFIX must be/);
    }
  });
});
