import {
  ConcurrentModificationException,
  CreateApplicationCommand,
  DescribeApplicationCommand,
  KinesisAnalyticsV2Client,
  ResourceInUseException,
  ResourceNotFoundException,
  StartApplicationCommand,
  UpdateApplicationCommand,
} from '@aws-sdk/client-kinesis-analytics-v2';
import { FlinkJobs, ManagedFlinkStandIn } from '../standin/managed-flink.standin';
import { loadServiceModel, ModelValidator } from '../standin/service-model';
import { applicationNameOf, generationOfJob, isJobNamed, jobNameFor } from './deployment-target';
import { ManagedFlinkClient, ManagedFlinkTarget } from './managed-flink.target';
import { fromPropertyGroups, MAX_VALUE_CHARS, PropertyGroup, splitSql, toPropertyGroups } from './runtime-properties';

/**
 * The target against the stand-in (over HTTP, through the real SDK client), with a Flink
 * the test scripts. Every request the target builds is also checked here, on the client
 * side, against the service's published model: a request the model refuses fails the test.
 */
class ScriptedFlink implements FlinkJobs {
  jobs = new Map<string, { state: string; allTasksRunning: boolean; name: string; restoreFrom?: string; properties: PropertyGroup[] }>();
  savepointFails = 0;
  private seq = 0;
  async run(job: { jobName: string; properties: PropertyGroup[]; restoreFrom?: string }) {
    const id = `flink${++this.seq}`;
    this.jobs.set(id, { state: 'RUNNING', allTasksRunning: true, name: job.jobName, restoreFrom: job.restoreFrom, properties: job.properties });
    return id;
  }
  async overview() {
    return new Map([...this.jobs].map(([id, j]) => [id, { state: j.state, allTasksRunning: j.allTasksRunning }]));
  }
  async stopWithSavepoint(jobId: string) {
    if (this.savepointFails > 0) {
      this.savepointFails--;
      throw new Error('Flink: savepoint failed');
    }
    this.jobs.get(jobId)!.state = 'FINISHED';
    return `file:///savepoints/savepoint-${jobId}`;
  }
  async cancel(jobId: string) {
    const job = this.jobs.get(jobId);
    if (job) job.state = 'CANCELED';
  }
}

const model = loadServiceModel();
const validator = new ModelValidator(model);
const SETTINGS = { roleArn: 'arn:aws:iam::123456789012:role/flagstream-flink', code: { bucketArn: 'arn:aws:s3:::flagstream-code', fileKey: 'runner/flagstream-runner.jar' } };
const CODE = 's3://flagstream-code/runner/flagstream-runner.jar';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
const ANALYSIS = '0b0f7d8e-1111-4222-8333-944445555666';

describe('ManagedFlinkTarget against the stand-in', () => {
  let flink: ScriptedFlink;
  let standIn: ManagedFlinkStandIn;
  let url: string;
  let sdk: KinesisAnalyticsV2Client;
  let requests: { operation: string; input: any }[];
  let target: ManagedFlinkTarget;

  /** The SDK client, with every request recorded and checked against the model before it is sent. */
  const recording = (client: KinesisAnalyticsV2Client): ManagedFlinkClient => ({
    send(command: any) {
      const operation = command.constructor.name.replace(/Command$/, '');
      const violations = validator.validateInput(operation, command.input);
      if (violations.length) throw new Error(`the target built an invalid ${operation}: ${JSON.stringify(violations)}`);
      requests.push({ operation, input: command.input });
      return client.send(command);
    },
  });
  const ops = () => requests.map((r) => r.operation);
  const last = (operation: string) => [...requests].reverse().find((r) => r.operation === operation)!.input;
  const eventually = async <T>(probe: () => Promise<T | undefined>, what: string): Promise<T> => {
    for (let i = 0; i < 200; i++) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const phaseOf = async (id: string) => (await target.observe()).get(id)?.state;
  const until = (id: string, state: string) => eventually(async () => ((await phaseOf(id)) === state ? true : undefined), `${id} ${state}`);

  beforeEach(async () => {
    flink = new ScriptedFlink();
    standIn = new ManagedFlinkStandIn({ model, flink, codeLocations: [CODE], watchMs: 20 });
    url = await standIn.listen(0);
    sdk = new KinesisAnalyticsV2Client({ region: 'us-east-1', endpoint: url, credentials: CREDENTIALS, maxAttempts: 1 });
    requests = [];
    target = new ManagedFlinkTarget(SETTINGS, recording(sdk), { pollMs: 20, stopTimeoutMs: 10_000 });
  });

  afterEach(async () => {
    sdk.destroy();
    await standIn.close();
  });

  it('names one application per generation: the job name without its nonce', () => {
    const job = jobNameFor('p3', 3, 'ab12cd34');
    expect(applicationNameOf(job)).toBe(`flagstream-pool-p3-g3`);
    expect(generationOfJob(applicationNameOf(job)!)).toBe(3);
    expect(generationOfJob(job)).toBe(3);
    expect(isJobNamed(applicationNameOf(job)!, job)).toBe(true);
    expect(isJobNamed(job, job)).toBe(true);
    expect(isJobNamed(`flagstream-pool-p3-g31`, job)).toBe(false);
    expect(applicationNameOf('someone-elses-job')).toBeUndefined();
  });

  it('creates and starts an application with the SQL in its runtime properties, and sees it run', async () => {
    const name = jobNameFor('p3', 1, 'ab12cd34');
    const sql = "SET 'a' = 'b';\nINSERT INTO t SELECT * FROM s;\n";
    const id = await target.deploy({ name, sql });
    expect(id).toBe(applicationNameOf(name));
    expect(ops()).toEqual(['DescribeApplication', 'CreateApplication', 'StartApplication']);
    const created = last('CreateApplication');
    expect(created).toMatchObject({
      ApplicationName: id, RuntimeEnvironment: 'FLINK-1_20', ServiceExecutionRole: SETTINGS.roleArn,
      ApplicationConfiguration: {
        ApplicationCodeConfiguration: { CodeContentType: 'ZIPFILE', CodeContent: { S3ContentLocation: { BucketARN: 'arn:aws:s3:::flagstream-code', FileKey: 'runner/flagstream-runner.jar' } } },
        ApplicationSnapshotConfiguration: { SnapshotsEnabled: true },
        FlinkApplicationConfiguration: { CheckpointConfiguration: { ConfigurationType: 'DEFAULT' } },
      },
    });
    expect(fromPropertyGroups(created.ApplicationConfiguration.EnvironmentProperties.PropertyGroups)).toEqual({ sql: sql.trim(), jobName: name });
    expect(last('StartApplication')).toEqual({
      ApplicationName: id,
      RunConfiguration: { ApplicationRestoreConfiguration: { ApplicationRestoreType: 'SKIP_RESTORE_FROM_SNAPSHOT' }, FlinkRunConfiguration: { AllowNonRestoredState: false } },
    });
    await until(id, 'RUNNING');
    expect((await target.observe()).get(id)).toEqual({ id, name: id, state: 'RUNNING', phase: 'RUNNING', retained: true });
    // The stand-in ran it under a name no local orphan sweep takes for its own.
    expect([...flink.jobs.values()][0]).toMatchObject({ name: `mf-${id}`, restoreFrom: undefined });
    await target.ping();
    expect(last('ListApplications')).toEqual({ Limit: 1 });
  });

  it('keeps every request valid for long SQL, split into ordered parts over several groups', async () => {
    // Long runs of whitespace and parts that would start or end in a space: none may.
    const statement = (i: number) => `INSERT INTO sink_${i} SELECT a, b,    c FROM src WHERE x = 'value ${i}'   ;\n\n`;
    let sql = '';
    for (let i = 0; sql.length < 300_000; i++) sql += statement(i);
    const name = jobNameFor('p3', 2, '00ff00ff');
    const id = await target.deploy({ name, sql });
    const groups: PropertyGroup[] = last('CreateApplication').ApplicationConfiguration.EnvironmentProperties.PropertyGroups;
    expect(groups.length).toBeGreaterThan(2);
    expect(groups.map((g) => g.PropertyGroupId).slice(0, 3)).toEqual(['FlinkApplicationProperties', 'FlinkApplicationProperties.1', 'FlinkApplicationProperties.2']);
    for (const group of groups) {
      expect(Object.keys(group.PropertyMap).length).toBeLessThanOrEqual(50);
      for (const value of Object.values(group.PropertyMap)) {
        expect(value.length).toBeLessThanOrEqual(MAX_VALUE_CHARS);
        expect(value).toBe(value.trim());
      }
    }
    expect(fromPropertyGroups(groups)).toEqual({ sql: sql.trim(), jobName: name });
    // What the stand-in hands the runner is what the target sent.
    await until(id, 'RUNNING');
    expect(fromPropertyGroups([...flink.jobs.values()][0].properties).sql).toBe(sql.trim());
  });

  it('refuses SQL too long for 50 groups of 50 properties before sending anything', async () => {
    const sql = 'x'.repeat(2048 * 2500);
    await expect(target.deploy({ name: jobNameFor('p3', 1, 'aa'), sql })).rejects.toThrow(/too long for Managed Flink's runtime properties/);
    expect(requests).toEqual([]);
    expect(splitSql('  abc def \n', 4)).toEqual(['ab', 'c de', 'f']);
    expect(() => splitSql('a b', 2)).toThrow(/whitespace/);
    expect(() => toPropertyGroups('', 'j')).toThrow(/empty/);
  });

  it('stops with a snapshot, restores it into the same application, and adopts a running one', async () => {
    const first = jobNameFor('p3', 1, 'aaaa1111');
    const id = await target.deploy({ name: first, sql: 'INSERT INTO a SELECT 1;' });
    await until(id, 'RUNNING');

    const snapshot = await target.stopWithSavepoint(id);
    expect(snapshot).toBe(`${id}-1`);
    expect(last('StopApplication')).toEqual({ ApplicationName: id, Force: false });
    expect((await target.observe()).get(id)).toMatchObject({ state: 'READY', phase: 'FINISHED', retained: true });
    expect(await target.latestCheckpoint(id)).toBe(snapshot);

    requests = [];
    const second = jobNameFor('p3', 1, 'bbbb2222');
    expect(await target.deploy({ name: second, sql: 'INSERT INTO a SELECT 1;', restoreFrom: snapshot })).toBe(id);
    expect(ops()).toEqual(['DescribeApplication', 'UpdateApplication', 'StartApplication']);
    expect(last('UpdateApplication')).toMatchObject({ ApplicationName: id, CurrentApplicationVersionId: 1 });
    expect(fromPropertyGroups(last('UpdateApplication').ApplicationConfigurationUpdate.EnvironmentPropertyUpdates.PropertyGroups).jobName).toBe(second);
    expect(last('StartApplication').RunConfiguration.ApplicationRestoreConfiguration).toEqual({ ApplicationRestoreType: 'RESTORE_FROM_CUSTOM_SNAPSHOT', SnapshotName: snapshot });
    await until(id, 'RUNNING');
    expect([...flink.jobs.values()].at(-1)!.restoreFrom).toBe('file:///savepoints/savepoint-flink1');

    // A deployment of the same generation while it runs (a control plane that crashed mid-deploy): adopted.
    requests = [];
    expect(await target.deploy({ name: jobNameFor('p3', 1, 'cccc3333'), sql: 'INSERT INTO a SELECT 1;' })).toBe(id);
    expect(ops()).toEqual(['DescribeApplication']);

    // A Flink path is no snapshot of this application.
    await expect(target.deploy({ name: jobNameFor('p3', 1, 'dd'), sql: 'x', restoreFrom: 'file:///savepoints/x' })).rejects.toThrow(/restores only its own snapshots/);
  });

  it('tries the stop again when the snapshot fails, and stops without one in the end', async () => {
    const id = await target.deploy({ name: jobNameFor('p3', 1, 'aa'), sql: 'INSERT INTO a SELECT 1;' });
    await until(id, 'RUNNING');
    flink.savepointFails = 1;
    expect(await target.stopWithSavepoint(id)).toBe(`${id}-1`);
    expect(requests.filter((r) => r.operation === 'StopApplication').map((r) => r.input.Force)).toEqual([false, false]);

    await target.deploy({ name: jobNameFor('p3', 1, 'bb'), sql: 'INSERT INTO a SELECT 1;', restoreFrom: `${id}-1` });
    await until(id, 'RUNNING');
    flink.savepointFails = 10;
    requests = [];
    expect(await target.stopWithSavepoint(id)).toBeUndefined();
    expect(requests.filter((r) => r.operation === 'StopApplication').map((r) => r.input.Force)).toEqual([false, false, false, true]);
    expect(await phaseOf(id)).toBe('READY');
    // The last snapshot is still there to restore.
    expect(await target.latestCheckpoint(id)).toBe(`${id}-1`);
    expect(await target.failureCause(id)).toMatch(/^Managed Flink application READY; StopApplication failed: Snapshot of the application failed: Flink: savepoint failed/);
  });

  it('deletes an application (also a stopped one), and is done when it is gone', async () => {
    const id = await target.deploy({ name: jobNameFor('p3', 4, 'aa'), sql: 'INSERT INTO a SELECT 1;' });
    await until(id, 'RUNNING');
    await target.cancel(id);
    const deleted = last('DeleteApplication');
    expect(deleted.ApplicationName).toBe(id);
    expect(deleted.CreateTimestamp).toBeInstanceOf(Date);
    await eventually(async () => ((await target.observe()).has(id) ? undefined : true), 'the application to go');
    await target.cancel(id);
    expect(await target.latestCheckpoint(id)).toBeUndefined();
    expect(await target.stopWithSavepoint(id)).toBeUndefined();
    expect([...flink.jobs.values()][0].state).toBe('CANCELED');
  });

  it('follows NextToken when there are more applications than one page holds', async () => {
    for (let i = 0; i < 55; i++) {
      await standIn.call('CreateApplication', {
        ApplicationName: `flagstream-flag-evaluations-a${i}-g1`, RuntimeEnvironment: 'FLINK-1_20', ServiceExecutionRole: SETTINGS.roleArn,
        ApplicationConfiguration: { ApplicationCodeConfiguration: { CodeContentType: 'ZIPFILE', CodeContent: { S3ContentLocation: { BucketARN: SETTINGS.code.bucketArn, FileKey: SETTINGS.code.fileKey } } } },
      });
    }
    await standIn.call('CreateApplication', {
      ApplicationName: 'someone-elses', RuntimeEnvironment: 'FLINK-1_20', ServiceExecutionRole: SETTINGS.roleArn,
      ApplicationConfiguration: { ApplicationCodeConfiguration: { CodeContentType: 'ZIPFILE', CodeContent: { S3ContentLocation: { BucketARN: SETTINGS.code.bucketArn, FileKey: SETTINGS.code.fileKey } } } },
    });
    const jobs = await target.observe();
    expect(jobs.size).toBe(55);
    expect(ops()).toEqual(['ListApplications', 'ListApplications']);
    expect(requests[1].input.NextToken).toBeDefined();
  });

  it('answers what the service refuses with the SDK exception classes', async () => {
    const id = await target.deploy({ name: jobNameFor('p3', 1, 'aa'), sql: 'INSERT INTO a SELECT 1;' });
    await until(id, 'RUNNING');
    await expect(sdk.send(new StartApplicationCommand({ ApplicationName: id }))).rejects.toBeInstanceOf(ResourceInUseException);
    await expect(sdk.send(new DescribeApplicationCommand({ ApplicationName: 'nothing-here' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    const detail = (await sdk.send(new DescribeApplicationCommand({ ApplicationName: id }))).ApplicationDetail!;
    expect(detail.CreateTimestamp).toBeInstanceOf(Date);
    await expect(sdk.send(new CreateApplicationCommand({ ApplicationName: id, RuntimeEnvironment: 'FLINK-1_20', ServiceExecutionRole: SETTINGS.roleArn }))).rejects.toBeInstanceOf(ResourceInUseException);
    await target.stopWithSavepoint(id);
    await expect(sdk.send(new UpdateApplicationCommand({ ApplicationName: id, CurrentApplicationVersionId: 7, ApplicationConfigurationUpdate: {} }))).rejects.toBeInstanceOf(ConcurrentModificationException);
    await expect(sdk.send(new StartApplicationCommand({ ApplicationName: id, RunConfiguration: { ApplicationRestoreConfiguration: { ApplicationRestoreType: 'RESTORE_FROM_CUSTOM_SNAPSHOT', SnapshotName: 'no-such' } } })))
      .rejects.toBeInstanceOf(ResourceNotFoundException);
    // The model's constraints, named: the SDK sends what it is given, the stand-in refuses it.
    const invalid = sdk.send(new DescribeApplicationCommand({ ApplicationName: 'not a name' }));
    await expect(invalid).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringContaining("'ApplicationName' failed to satisfy constraint: Member must satisfy regular expression pattern") });
    const tooLong = sdk.send(new UpdateApplicationCommand({
      ApplicationName: id, CurrentApplicationVersionId: 1,
      ApplicationConfigurationUpdate: { EnvironmentPropertyUpdates: { PropertyGroups: [{ PropertyGroupId: 'FlinkApplicationProperties', PropertyMap: { 'sql.0': 'x'.repeat(2049) } }] } },
    }));
    await expect(tooLong).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringContaining('PropertyMap["sql.0"]') });
    const twice = sdk.send(new UpdateApplicationCommand({
      ApplicationName: id, CurrentApplicationVersionId: 1,
      ApplicationConfigurationUpdate: { EnvironmentPropertyUpdates: { PropertyGroups: [{ PropertyGroupId: 'g', PropertyMap: { a: 'b' } }, { PropertyGroupId: 'g', PropertyMap: { c: 'd' } }] } },
    }));
    await expect(twice).rejects.toMatchObject({ name: 'InvalidArgumentException' });
    const elsewhere = sdk.send(new CreateApplicationCommand({
      ApplicationName: 'other', RuntimeEnvironment: 'FLINK-1_20', ServiceExecutionRole: SETTINGS.roleArn,
      ApplicationConfiguration: { ApplicationCodeConfiguration: { CodeContentType: 'ZIPFILE', CodeContent: { S3ContentLocation: { BucketARN: 'arn:aws:s3:::elsewhere', FileKey: 'x.jar' } } } },
    }));
    await expect(elsewhere).rejects.toMatchObject({ name: 'InvalidArgumentException', message: expect.stringContaining('Unable to access the S3 object') });
  });

  it('finds the stand-in through AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2, as the SDK reads it itself', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2: url, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' });
    const client = ManagedFlinkTarget.client('us-east-1');
    try {
      // Nothing else answers this API here: the ping reached the stand-in.
      await new ManagedFlinkTarget(SETTINGS, client).ping();
      expect(client.config.endpoint).toBeUndefined();
    } finally {
      client.destroy();
      process.env = saved;
    }
  });
});
