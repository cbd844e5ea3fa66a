import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { describeViolations, ModelValidator, ServiceModel } from './service-model';

/**
 * A local stand-in for Amazon Managed Service for Apache Flink: its API (JSON 1.1,
 * `X-Amz-Target: KinesisAnalytics_20180523.<Operation>`) on loopback, for the
 * `managed-flink` target in the local stack and the tests. Applications live in memory
 * (and in a JSON file, so a restarted stand-in keeps them) and run on a Flink cluster
 * (FlinkJobs): the runner JAR with the application's runtime properties as
 * `--properties-base64`, the Flink job named `mf-<application>` (no `flagstream-` prefix:
 * a local control plane's orphan sweep leaves it alone).
 *
 * It refuses what the service refuses: every request is checked against the service's
 * published API model (ModelValidator) and the documented rules the model cannot state
 * (unique names, one property group id once, operations in the wrong state, a stale
 * CurrentApplicationVersionId, a snapshot that does not exist, …), answering the service's
 * error shapes (`__type` + `message`, HTTP 400) so the SDK raises its exception classes.
 * Its own answers are checked against the model too (a mismatch is a stand-in bug: 500).
 *
 * Unlike the service: one runtime (FLINK-1_20), code only from the S3 locations it is
 * given (mapped to local JARs), no VPC, logging, tags, Zeppelin or SQL applications, and
 * UpdateApplication of a running application is refused rather than applied with a restart.
 */

export type ApplicationStatus =
  | 'DELETING' | 'STARTING' | 'STOPPING' | 'READY' | 'RUNNING' | 'UPDATING' | 'AUTOSCALING' | 'FORCE_STOPPING' | 'ROLLING_BACK' | 'MAINTENANCE' | 'ROLLED_BACK';

interface PropertyGroup {
  PropertyGroupId: string;
  PropertyMap: Record<string, string>;
}

interface Snapshot {
  name: string;
  status: 'CREATING' | 'READY' | 'DELETING' | 'FAILED';
  versionId: number;
  createdMs: number;
  /** Where Flink wrote the savepoint. */
  path: string;
}

export interface Application {
  name: string;
  arn: string;
  description?: string;
  runtime: string;
  role: string;
  mode: string;
  status: ApplicationStatus;
  versionId: number;
  versionCreatedMs: number;
  createdMs: number;
  updatedMs: number;
  conditionalToken: string;
  code: { bucketArn: string; fileKey: string; objectVersion?: string };
  properties: PropertyGroup[];
  checkpoint: Record<string, unknown>;
  parallelism: Record<string, unknown>;
  snapshotsEnabled: boolean;
  snapshots: Snapshot[];
  snapshotSeq: number;
  /** The restore of the last start, as DescribeApplication shows it. */
  lastRun?: { ApplicationRestoreConfigurationDescription: Record<string, unknown>; FlinkRunConfigurationDescription: Record<string, unknown> };
  flinkJobId?: string;
  /** Why the last start or run ended (the stand-in's log says more; the service puts it in CloudWatch). */
  lastError?: string;
  /** Start, stop and update operations, newest last (DescribeApplicationOperation, ListApplicationOperations). */
  operations: Operation[];
}

interface Operation {
  id: string;
  operation: 'StartApplication' | 'StopApplication' | 'UpdateApplication';
  startMs: number;
  endMs?: number;
  status: 'IN_PROGRESS' | 'CANCELLED' | 'SUCCESSFUL' | 'FAILED';
  error?: string;
}

/** What the stand-in needs of a Flink cluster (FlinkRestJobs for a real one; tests pass their own). */
export interface FlinkJobs {
  /** Submits the runner JAR for one application; resolves with Flink's job id. */
  run(job: { jobName: string; properties: PropertyGroup[]; restoreFrom?: string }): Promise<string>;
  /** Every job the cluster knows, by Flink job id. */
  overview(): Promise<Map<string, { state: string; allTasksRunning: boolean }>>;
  /** Stops the job with a savepoint; resolves with its path, rejects when Flink could not take it (the job then runs on). */
  stopWithSavepoint(jobId: string): Promise<string>;
  cancel(jobId: string): Promise<void>;
}

export class ServiceError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

export interface StandInOptions {
  model: ServiceModel;
  flink: FlinkJobs;
  /** The S3 code locations it can "read": `s3://bucket/key` → accepted. */
  codeLocations: string[];
  region?: string;
  /** Where applications are kept across restarts; none: memory only. */
  stateFile?: string;
  /** How often running applications' Flink jobs are looked at. */
  watchMs?: number;
  log?: (line: string) => void;
}

const TARGET_PREFIX = 'KinesisAnalytics_20180523.';
const RUNNING_FLINK = new Set(['RUNNING', 'CREATED', 'INITIALIZING', 'RESTARTING', 'FAILING', 'RECONCILING']);
const ENDED_FLINK = new Set(['FAILED', 'CANCELED', 'FINISHED', 'SUSPENDED']);
const seconds = (ms: number) => ms / 1000;

export class ManagedFlinkStandIn {
  private readonly validator: ModelValidator;
  private readonly apps = new Map<string, Application>();
  private readonly region: string;
  private readonly log: (line: string) => void;
  private server?: Server;
  private watcher?: NodeJS.Timeout;
  private watching = false;
  /** Background work per application (a start, a stop, a delete): one at a time. */
  private readonly work = new Map<string, Promise<void>>();

  constructor(private readonly options: StandInOptions) {
    this.validator = new ModelValidator(options.model);
    this.region = options.region ?? 'us-east-1';
    this.log = options.log ?? (() => undefined);
    if (options.stateFile && existsSync(options.stateFile)) {
      for (const app of JSON.parse(readFileSync(options.stateFile, 'utf8')) as Application[]) this.apps.set(app.name, { ...app, operations: app.operations ?? [] });
    }
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.watcher = setInterval(() => void this.watch(), this.options.watchMs ?? 500);
    // Applications a previous run left mid-way: settle them against what Flink shows.
    for (const app of this.apps.values()) {
      if (app.status === 'DELETING') this.background(app.name, () => this.finishDelete(app));
      else if (['STOPPING', 'FORCE_STOPPING', 'STARTING', 'UPDATING'].includes(app.status)) app.status = app.flinkJobId ? 'STARTING' : 'READY';
    }
    const { port: bound } = this.server.address() as AddressInfo;
    return `http://${host}:${bound}`;
  }

  async close(): Promise<void> {
    if (this.watcher) clearInterval(this.watcher);
    await Promise.allSettled([...this.work.values()]);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }

  /** The applications, for tests and the benchmark. */
  applications(): Application[] {
    return [...this.apps.values()];
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const requestId = randomUUID();
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': requestId });
      res.end(JSON.stringify(body));
    };
    const fail = (error: ServiceError) => {
      // The SDK reads the error's class from __type (x-amzn-ErrorType says the same).
      res.setHeader('x-amzn-ErrorType', error.type);
      send(error.status, { __type: error.type, message: error.message });
    };
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) throw new ServiceError('UnknownOperationException', `no operation for ${req.method} ${target || '(no X-Amz-Target)'}`);
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
        throw new ServiceError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403);
      }
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
        throw new ServiceError('SerializationException', `Content-Type must be application/x-amz-json-1.1, got ${req.headers['content-type']}`);
      }
      const operation = target.slice(TARGET_PREFIX.length);
      let input: unknown;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        throw new ServiceError('SerializationException', 'the body is not JSON');
      }
      const output = await this.call(operation, input);
      const wrong = this.validator.validateOutput(operation, output);
      if (wrong.length) {
        this.log(`BUG: ${operation} answer does not fit the model: ${describeViolations(wrong)}`);
        throw new ServiceError('InternalFailure', `stand-in answer does not fit the model: ${describeViolations(wrong)}`, 500);
      }
      send(200, output);
    } catch (error) {
      if (error instanceof ServiceError) {
        this.log(`${req.headers['x-amz-target']}: ${error.type}: ${error.message}`);
        return fail(error);
      }
      this.log(`${req.headers['x-amz-target']}: ${(error as Error).stack}`);
      fail(new ServiceError('ServiceUnavailableException', (error as Error).message, 500));
    }
  }

  /** One operation: the model's checks, then the service's rules. Exposed for tests. */
  async call(operation: string, input: unknown): Promise<unknown> {
    if (!this.options.model.operations[operation]) throw new ServiceError('UnknownOperationException', `unknown operation ${operation}`);
    const violations = this.validator.validateInput(operation, input);
    if (violations.length) throw new ServiceError('ValidationException', describeViolations(violations));
    const body = input as any;
    switch (operation) {
      case 'CreateApplication':
        return this.create(body);
      case 'DescribeApplication':
        return { ApplicationDetail: this.detail(this.app(body.ApplicationName)) };
      case 'ListApplications':
        return this.list(body);
      case 'UpdateApplication':
        return this.update(body);
      case 'StartApplication':
        return this.start(body);
      case 'StopApplication':
        return this.stop(body);
      case 'DeleteApplication':
        return this.delete(body);
      case 'ListApplicationSnapshots':
        return this.listSnapshots(body);
      case 'DescribeApplicationOperation':
        return this.describeOperation(body);
      case 'ListApplicationOperations':
        return this.listOperations(body);
      default:
        throw new ServiceError('UnsupportedOperationException', `${operation} is valid, but the local stand-in does not implement it`);
    }
  }

  private app(name: string): Application {
    const app = this.apps.get(name);
    if (!app) throw new ServiceError('ResourceNotFoundException', `Application ${name} not found`);
    return app;
  }

  private create(body: any) {
    if (this.apps.has(body.ApplicationName)) throw new ServiceError('ResourceInUseException', `Application ${body.ApplicationName} already exists`);
    if (body.RuntimeEnvironment !== 'FLINK-1_20') {
      throw new ServiceError('InvalidArgumentException', `the local stand-in runs FLINK-1_20 applications only, not ${body.RuntimeEnvironment}`);
    }
    if ((body.ApplicationMode ?? 'STREAMING') !== 'STREAMING') throw new ServiceError('InvalidArgumentException', 'the local stand-in runs STREAMING applications only');
    const configuration = body.ApplicationConfiguration ?? {};
    for (const unsupported of ['SqlApplicationConfiguration', 'ZeppelinApplicationConfiguration']) {
      if (configuration[unsupported]) throw new ServiceError('InvalidArgumentException', `${unsupported} is not valid for a ${body.RuntimeEnvironment} application`);
    }
    for (const unsupported of ['VpcConfigurations', 'ApplicationEncryptionConfiguration']) {
      if (configuration[unsupported]) throw new ServiceError('InvalidArgumentException', `${unsupported}: not supported by the local stand-in`);
    }
    if (body.CloudWatchLoggingOptions || body.Tags) throw new ServiceError('InvalidArgumentException', 'CloudWatchLoggingOptions and Tags are not supported by the local stand-in');
    const code = this.code(configuration.ApplicationCodeConfiguration);
    const properties = this.propertyGroups(configuration.EnvironmentProperties?.PropertyGroups ?? []);
    const flink = configuration.FlinkApplicationConfiguration ?? {};
    const now = Date.now();
    const account = /^arn:[^:]+:iam::(\d{12}):/.exec(body.ServiceExecutionRole)?.[1] ?? '000000000000';
    const app: Application = {
      name: body.ApplicationName,
      arn: `arn:aws:kinesisanalytics:${this.region}:${account}:application/${body.ApplicationName}`,
      description: body.ApplicationDescription,
      runtime: body.RuntimeEnvironment,
      role: body.ServiceExecutionRole,
      mode: body.ApplicationMode ?? 'STREAMING',
      status: 'READY',
      versionId: 1,
      versionCreatedMs: now,
      createdMs: now,
      updatedMs: now,
      conditionalToken: randomBytes(12).toString('hex'),
      code,
      properties,
      checkpoint: checkpointConfiguration(flink.CheckpointConfiguration),
      parallelism: parallelismConfiguration(flink.ParallelismConfiguration),
      // The service's default: snapshots enabled for Flink applications.
      snapshotsEnabled: configuration.ApplicationSnapshotConfiguration?.SnapshotsEnabled ?? true,
      snapshots: [],
      snapshotSeq: 0,
      operations: [],
    };
    this.apps.set(app.name, app);
    this.save();
    this.log(`created ${app.name}`);
    return { ApplicationDetail: this.detail(app) };
  }

  private code(configuration: any): Application['code'] {
    if (!configuration) throw new ServiceError('InvalidArgumentException', 'ApplicationCodeConfiguration is required for a Flink application');
    if (configuration.CodeContentType !== 'ZIPFILE') throw new ServiceError('InvalidArgumentException', 'a Flink application\'s code (a JAR) has CodeContentType ZIPFILE');
    const s3 = configuration.CodeContent?.S3ContentLocation;
    if (!s3 || configuration.CodeContent.TextContent || configuration.CodeContent.ZipFileContent) {
      throw new ServiceError('InvalidArgumentException', 'the local stand-in takes code from S3ContentLocation only');
    }
    this.checkLocation(s3.BucketARN, s3.FileKey);
    return { bucketArn: s3.BucketARN, fileKey: s3.FileKey, objectVersion: s3.ObjectVersion };
  }

  private checkLocation(bucketArn: string, fileKey: string): void {
    const bucket = /^arn:aws[a-z-]*:s3:::([^/]+)$/.exec(bucketArn)?.[1];
    if (!bucket) throw new ServiceError('InvalidArgumentException', `BucketARN ${bucketArn} is not an S3 bucket ARN`);
    const url = `s3://${bucket}/${fileKey}`;
    if (!this.options.codeLocations.includes(url)) {
      throw new ServiceError('InvalidArgumentException', `Unable to access the S3 object ${url} (the local stand-in has only ${this.options.codeLocations.join(', ')})`);
    }
  }

  /** The documented limits the model cannot state: a group id once per application. */
  private propertyGroups(groups: PropertyGroup[]): PropertyGroup[] {
    const ids = new Set<string>();
    for (const group of groups) {
      if (ids.has(group.PropertyGroupId)) throw new ServiceError('InvalidArgumentException', `Property group ${group.PropertyGroupId} is given twice`);
      ids.add(group.PropertyGroupId);
    }
    return groups.map((g) => ({ PropertyGroupId: g.PropertyGroupId, PropertyMap: { ...g.PropertyMap } }));
  }

  private list(body: any) {
    const limit = body.Limit ?? 50;
    const names = [...this.apps.keys()].sort();
    let from = 0;
    if (body.NextToken !== undefined) {
      from = names.findIndex((n) => n >= body.NextToken);
      if (from < 0) from = names.length;
    }
    const page = names.slice(from, from + limit);
    const next = names[from + limit];
    return {
      ApplicationSummaries: page.map((name) => {
        const app = this.apps.get(name)!;
        return {
          ApplicationName: app.name, ApplicationARN: app.arn, ApplicationStatus: app.status, ApplicationVersionId: app.versionId,
          RuntimeEnvironment: app.runtime, ApplicationMode: app.mode,
        };
      }),
      // The service's token is the name of the next application (the model types it so).
      ...(next ? { NextToken: next } : {}),
    };
  }

  private update(body: any) {
    const app = this.app(body.ApplicationName);
    if (body.CurrentApplicationVersionId === undefined && body.ConditionalToken === undefined) {
      throw new ServiceError('InvalidArgumentException', 'Either CurrentApplicationVersionId or ConditionalToken must be given');
    }
    if (body.CurrentApplicationVersionId !== undefined && body.CurrentApplicationVersionId !== app.versionId) {
      throw new ServiceError('ConcurrentModificationException', `Application ${app.name} is at version ${app.versionId}, not ${body.CurrentApplicationVersionId}`);
    }
    if (body.ConditionalToken !== undefined && body.ConditionalToken !== app.conditionalToken) {
      throw new ServiceError('ConcurrentModificationException', `Application ${app.name} has changed: the ConditionalToken is stale`);
    }
    if (app.status === 'RUNNING') throw new ServiceError('InvalidArgumentException', 'the local stand-in updates READY applications only (the service would restart a running one)');
    if (app.status !== 'READY') throw new ServiceError('ResourceInUseException', `Application ${app.name} is ${app.status}; it cannot be updated now`);
    const known = ['ApplicationName', 'CurrentApplicationVersionId', 'ConditionalToken', 'ApplicationConfigurationUpdate', 'ServiceExecutionRoleUpdate'];
    const other = Object.keys(body).filter((k) => !known.includes(k));
    if (other.length) throw new ServiceError('InvalidArgumentException', `${other.join(', ')}: not supported by the local stand-in`);
    const update = body.ApplicationConfigurationUpdate ?? {};
    const supported = ['EnvironmentPropertyUpdates', 'ApplicationCodeConfigurationUpdate', 'FlinkApplicationConfigurationUpdate', 'ApplicationSnapshotConfigurationUpdate'];
    const unsupported = Object.keys(update).filter((k) => !supported.includes(k));
    if (unsupported.length) throw new ServiceError('InvalidArgumentException', `${unsupported.join(', ')}: not supported by the local stand-in`);
    // Check everything before changing anything.
    const properties = update.EnvironmentPropertyUpdates ? this.propertyGroups(update.EnvironmentPropertyUpdates.PropertyGroups) : undefined;
    const codeUpdate = update.ApplicationCodeConfigurationUpdate;
    let code = app.code;
    if (codeUpdate) {
      if (codeUpdate.CodeContentTypeUpdate && codeUpdate.CodeContentTypeUpdate !== 'ZIPFILE') throw new ServiceError('InvalidArgumentException', 'a Flink application\'s code has CodeContentType ZIPFILE');
      const s3 = codeUpdate.CodeContentUpdate?.S3ContentLocationUpdate;
      if (codeUpdate.CodeContentUpdate && !s3) throw new ServiceError('InvalidArgumentException', 'the local stand-in takes code from S3 only');
      if (s3) {
        code = { bucketArn: s3.BucketARNUpdate ?? app.code.bucketArn, fileKey: s3.FileKeyUpdate ?? app.code.fileKey, objectVersion: s3.ObjectVersionUpdate ?? app.code.objectVersion };
        this.checkLocation(code.bucketArn, code.fileKey);
      }
    }
    const flink = update.FlinkApplicationConfigurationUpdate ?? {};
    if (flink.MonitoringConfigurationUpdate) throw new ServiceError('InvalidArgumentException', 'MonitoringConfigurationUpdate: not supported by the local stand-in');
    if (properties) app.properties = properties;
    app.code = code;
    if (flink.CheckpointConfigurationUpdate) app.checkpoint = checkpointConfiguration(renameUpdate(flink.CheckpointConfigurationUpdate));
    if (flink.ParallelismConfigurationUpdate) app.parallelism = parallelismConfiguration(renameUpdate(flink.ParallelismConfigurationUpdate));
    if (update.ApplicationSnapshotConfigurationUpdate) app.snapshotsEnabled = update.ApplicationSnapshotConfigurationUpdate.SnapshotsEnabledUpdate;
    if (body.ServiceExecutionRoleUpdate) app.role = body.ServiceExecutionRoleUpdate;
    app.versionId++;
    app.versionCreatedMs = app.updatedMs = Date.now();
    app.conditionalToken = randomBytes(12).toString('hex');
    const operation = this.operation(app, 'UpdateApplication');
    this.settle(app, operation, 'SUCCESSFUL');
    this.log(`updated ${app.name} to version ${app.versionId}`);
    return { ApplicationDetail: this.detail(app), OperationId: operation.id };
  }

  private start(body: any) {
    const app = this.app(body.ApplicationName);
    if (app.status !== 'READY') throw new ServiceError('ResourceInUseException', `Application ${app.name} is ${app.status}; only a READY application can be started`);
    const restore = body.RunConfiguration?.ApplicationRestoreConfiguration ?? { ApplicationRestoreType: 'RESTORE_FROM_LATEST_SNAPSHOT' };
    const type = restore.ApplicationRestoreType as string;
    if (restore.SnapshotArn) throw new ServiceError('InvalidArgumentException', 'SnapshotArn: not supported by the local stand-in');
    let snapshot: Snapshot | undefined;
    if (type === 'RESTORE_FROM_CUSTOM_SNAPSHOT') {
      if (!restore.SnapshotName) throw new ServiceError('InvalidArgumentException', 'RESTORE_FROM_CUSTOM_SNAPSHOT needs a SnapshotName');
      snapshot = app.snapshots.find((s) => s.name === restore.SnapshotName);
      if (!snapshot) throw new ServiceError('ResourceNotFoundException', `Snapshot ${restore.SnapshotName} of application ${app.name} not found`);
      if (snapshot.status !== 'READY') throw new ServiceError('InvalidArgumentException', `Snapshot ${snapshot.name} is ${snapshot.status}`);
    } else {
      if (restore.SnapshotName) throw new ServiceError('InvalidArgumentException', `SnapshotName is only for RESTORE_FROM_CUSTOM_SNAPSHOT, not ${type}`);
      if (type === 'RESTORE_FROM_LATEST_SNAPSHOT') snapshot = newest(app.snapshots.filter((s) => s.status === 'READY'));
    }
    if (snapshot && !app.snapshotsEnabled) throw new ServiceError('InvalidArgumentException', `Application ${app.name} has snapshots disabled; it cannot restore one`);
    if (body.RunConfiguration?.SqlRunConfigurations) throw new ServiceError('InvalidArgumentException', 'SqlRunConfigurations are not valid for a Flink application');
    const allowNonRestored = body.RunConfiguration?.FlinkRunConfiguration?.AllowNonRestoredState ?? false;
    app.status = 'STARTING';
    app.lastError = undefined;
    app.lastRun = {
      ApplicationRestoreConfigurationDescription: { ApplicationRestoreType: type, ...(restore.SnapshotName ? { SnapshotName: restore.SnapshotName } : {}) },
      FlinkRunConfigurationDescription: { AllowNonRestoredState: allowNonRestored },
    };
    const operation = this.operation(app, 'StartApplication');
    this.log(`starting ${app.name}${snapshot ? ` from ${snapshot.name} (${snapshot.path})` : ''}`);
    this.background(app.name, async () => {
      try {
        app.flinkJobId = await this.options.flink.run({ jobName: `mf-${app.name}`, properties: app.properties, restoreFrom: snapshot?.path });
        this.log(`${app.name} runs as Flink job ${app.flinkJobId}`);
      } catch (error) {
        app.lastError = (error as Error).message;
        app.status = 'READY';
        this.log(`${app.name} could not start: ${app.lastError}`);
        this.settle(app, operation, 'FAILED', app.lastError);
      }
      this.save();
    });
    return { OperationId: operation.id };
  }

  private stop(body: any) {
    const app = this.app(body.ApplicationName);
    const force = body.Force === true;
    const stoppable = force ? ['RUNNING', 'STARTING', 'UPDATING', 'AUTOSCALING', 'ROLLED_BACK', 'STOPPING'] : ['RUNNING'];
    if (!stoppable.includes(app.status)) throw new ServiceError('ResourceInUseException', `Application ${app.name} is ${app.status}; it cannot be stopped${force ? '' : ' with a snapshot'} now`);
    app.status = force ? 'FORCE_STOPPING' : 'STOPPING';
    for (const starting of app.operations.filter((o) => o.operation === 'StartApplication' && o.status === 'IN_PROGRESS')) this.settle(app, starting, 'CANCELLED');
    const operation = this.operation(app, 'StopApplication');
    this.background(app.name, async () => {
      const jobId = app.flinkJobId;
      if (!force && app.snapshotsEnabled && jobId) {
        try {
          const path = await this.options.flink.stopWithSavepoint(jobId);
          const snapshot: Snapshot = { name: `${app.name}-${++app.snapshotSeq}`, status: 'READY', versionId: app.versionId, createdMs: Date.now(), path };
          app.snapshots.push(snapshot);
          this.log(`${app.name} stopped with snapshot ${snapshot.name} (${path})`);
        } catch (error) {
          // The service's stop fails with the snapshot: the application goes on running.
          this.log(`${app.name}: the snapshot of its stop failed (${(error as Error).message}); it keeps running`);
          if (app.status === 'STOPPING') app.status = 'RUNNING';
          this.settle(app, operation, 'FAILED', `Snapshot of the application failed: ${(error as Error).message}`);
          return;
        }
      } else if (jobId) {
        await this.options.flink.cancel(jobId).catch((error: Error) => this.log(`${app.name}: cancelling ${jobId}: ${error.message}`));
        await this.jobEnded(jobId);
      }
      app.flinkJobId = undefined;
      app.status = 'READY';
      this.settle(app, operation, 'SUCCESSFUL');
    });
    return { OperationId: operation.id };
  }

  private delete(body: any) {
    const app = this.app(body.ApplicationName);
    const created = body.CreateTimestamp as number;
    if (Math.abs(created * 1000 - app.createdMs) >= 1) {
      throw new ServiceError('InvalidArgumentException', `CreateTimestamp ${created} is not the creation time of application ${app.name}`);
    }
    if (!['READY', 'RUNNING', 'ROLLED_BACK'].includes(app.status)) throw new ServiceError('ResourceInUseException', `Application ${app.name} is ${app.status}; it cannot be deleted now`);
    app.status = 'DELETING';
    this.save();
    this.background(app.name, () => this.finishDelete(app));
    return {};
  }

  private async finishDelete(app: Application): Promise<void> {
    if (app.flinkJobId) {
      await this.options.flink.cancel(app.flinkJobId).catch((error: Error) => this.log(`${app.name}: cancelling ${app.flinkJobId}: ${error.message}`));
      await this.jobEnded(app.flinkJobId);
    }
    this.apps.delete(app.name);
    this.save();
    this.log(`deleted ${app.name}`);
  }

  private listSnapshots(body: any) {
    const app = this.app(body.ApplicationName);
    const limit = body.Limit ?? 50;
    const from = body.NextToken === undefined ? 0 : Number.parseInt(body.NextToken, 10);
    if (!Number.isInteger(from) || from < 0) throw new ServiceError('InvalidArgumentException', 'NextToken is not one this service gave');
    const page = app.snapshots.slice(from, from + limit);
    return {
      SnapshotSummaries: page.map((s) => ({
        SnapshotName: s.name, SnapshotStatus: s.status, ApplicationVersionId: s.versionId, SnapshotCreationTimestamp: seconds(s.createdMs), RuntimeEnvironment: app.runtime,
      })),
      ...(from + limit < app.snapshots.length ? { NextToken: String(from + limit) } : {}),
    };
  }

  private operation(app: Application, operation: Operation['operation']): Operation {
    const op: Operation = { id: randomBytes(8).toString('hex'), operation, startMs: Date.now(), status: 'IN_PROGRESS' };
    app.operations.push(op);
    if (app.operations.length > 100) app.operations.splice(0, app.operations.length - 100);
    this.save();
    return op;
  }

  private settle(app: Application, op: Operation, status: Operation['status'], error?: string): void {
    if (op.status !== 'IN_PROGRESS') return;
    Object.assign(op, { status, endMs: Date.now(), error: error?.slice(0, 512) });
    this.save();
  }

  private describeOperation(body: any) {
    const app = this.app(body.ApplicationName);
    const op = app.operations.find((o) => o.id === body.OperationId);
    if (!op) throw new ServiceError('ResourceNotFoundException', `Operation ${body.OperationId} of application ${app.name} not found`);
    return {
      ApplicationOperationInfoDetails: {
        Operation: op.operation, StartTime: seconds(op.startMs), EndTime: seconds(op.endMs ?? Date.now()), OperationStatus: op.status,
        ...(op.error ? { OperationFailureDetails: { ErrorInfo: { ErrorString: op.error } } } : {}),
      },
    };
  }

  private listOperations(body: any) {
    const app = this.app(body.ApplicationName);
    const limit = body.Limit ?? 10;
    const from = body.NextToken === undefined ? 0 : Number.parseInt(body.NextToken, 10);
    if (!Number.isInteger(from) || from < 0) throw new ServiceError('InvalidArgumentException', 'NextToken is not one this service gave');
    const matching = [...app.operations].reverse().filter((o) => (!body.Operation || o.operation === body.Operation) && (!body.OperationStatus || o.status === body.OperationStatus));
    return {
      ApplicationOperationInfoList: matching.slice(from, from + limit).map((o) => ({
        Operation: o.operation, OperationId: o.id, StartTime: seconds(o.startMs), ...(o.endMs ? { EndTime: seconds(o.endMs) } : {}), OperationStatus: o.status,
      })),
      ...(from + limit < matching.length ? { NextToken: String(from + limit) } : {}),
    };
  }

  private detail(app: Application) {
    return {
      ApplicationARN: app.arn,
      ...(app.description !== undefined ? { ApplicationDescription: app.description } : {}),
      ApplicationName: app.name,
      RuntimeEnvironment: app.runtime,
      ServiceExecutionRole: app.role,
      ApplicationStatus: app.status,
      ApplicationVersionId: app.versionId,
      CreateTimestamp: seconds(app.createdMs),
      LastUpdateTimestamp: seconds(app.updatedMs),
      ApplicationVersionCreateTimestamp: seconds(app.versionCreatedMs),
      ConditionalToken: app.conditionalToken,
      ApplicationMode: app.mode,
      ApplicationConfigurationDescription: {
        ApplicationCodeConfigurationDescription: {
          CodeContentType: 'ZIPFILE',
          CodeContentDescription: {
            S3ApplicationCodeLocationDescription: { BucketARN: app.code.bucketArn, FileKey: app.code.fileKey, ...(app.code.objectVersion ? { ObjectVersion: app.code.objectVersion } : {}) },
          },
        },
        ...(app.lastRun ? { RunConfigurationDescription: app.lastRun } : {}),
        FlinkApplicationConfigurationDescription: {
          CheckpointConfigurationDescription: app.checkpoint,
          ParallelismConfigurationDescription: { ...app.parallelism, CurrentParallelism: app.parallelism.Parallelism },
          MonitoringConfigurationDescription: { ConfigurationType: 'DEFAULT', MetricsLevel: 'APPLICATION', LogLevel: 'INFO' },
        },
        EnvironmentPropertyDescriptions: { PropertyGroupDescriptions: app.properties },
        ApplicationSnapshotConfigurationDescription: { SnapshotsEnabled: app.snapshotsEnabled },
      },
    };
  }

  /** One piece of background work per application at a time, in order. */
  private background(name: string, task: () => Promise<void>): void {
    const previous = this.work.get(name) ?? Promise.resolve();
    const next = previous.then(task).catch((error: Error) => this.log(`${name}: ${error.stack}`));
    this.work.set(name, next);
    void next.finally(() => {
      if (this.work.get(name) === next) this.work.delete(name);
    });
  }

  /** Waits (up to a minute) until Flink shows the job ended or forgot it. */
  private async jobEnded(jobId: string): Promise<void> {
    for (let i = 0; i < 120; i++) {
      const job = (await this.options.flink.overview().catch(() => undefined))?.get(jobId);
      if (!job || ENDED_FLINK.has(job.state)) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Follows the Flink jobs of starting and running applications: RUNNING once every task
   * runs; while Flink restarts a failing job the application stays RUNNING (as on the
   * service); a job that ended or that Flink forgot leaves the application READY.
   */
  private async watch(): Promise<void> {
    if (this.watching) return;
    const watched = [...this.apps.values()].filter((a) => (a.status === 'STARTING' || a.status === 'RUNNING') && a.flinkJobId && !this.work.has(a.name));
    if (!watched.length) return;
    this.watching = true;
    try {
      const jobs = await this.options.flink.overview();
      let changed = false;
      for (const app of watched) {
        if (this.work.has(app.name) || !(app.status === 'STARTING' || app.status === 'RUNNING')) continue;
        const job = jobs.get(app.flinkJobId!);
        if (!job || ENDED_FLINK.has(job.state)) {
          app.lastError = job ? `Flink job ${app.flinkJobId} ${job.state}` : `Flink job ${app.flinkJobId} is gone`;
          this.log(`${app.name}: ${app.lastError}; the application is READY`);
          for (const op of app.operations.filter((o) => o.operation === 'StartApplication')) this.settle(app, op, 'FAILED', app.lastError);
          app.status = 'READY';
          app.flinkJobId = undefined;
          changed = true;
        } else if (app.status === 'STARTING' && job.state === 'RUNNING' && job.allTasksRunning) {
          app.status = 'RUNNING';
          for (const op of app.operations.filter((o) => o.operation === 'StartApplication')) this.settle(app, op, 'SUCCESSFUL');
          this.log(`${app.name} is RUNNING`);
          changed = true;
        } else if (!RUNNING_FLINK.has(job.state)) {
          this.log(`${app.name}: Flink job ${app.flinkJobId} is ${job.state}`);
        }
      }
      if (changed) this.save();
    } catch (error) {
      this.log(`cannot see Flink's jobs: ${(error as Error).message}`);
    } finally {
      this.watching = false;
    }
  }

  private save(): void {
    const file = this.options.stateFile;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify([...this.apps.values()], null, 1));
    renameSync(`${file}.tmp`, file);
  }
}

function newest(snapshots: Snapshot[]): Snapshot | undefined {
  return [...snapshots].sort((a, b) => b.createdMs - a.createdMs || b.name.localeCompare(a.name))[0];
}

/** `…Update` members renamed to the description's names (CheckpointingEnabledUpdate → CheckpointingEnabled). */
function renameUpdate(update: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(update).map(([k, v]) => [k.replace(/Update$/, ''), v]));
}

/** The service's defaults for a DEFAULT checkpoint configuration. */
function checkpointConfiguration(given: any): Record<string, unknown> {
  if (!given || given.ConfigurationType === 'DEFAULT') {
    return { ConfigurationType: 'DEFAULT', CheckpointingEnabled: true, CheckpointInterval: 60_000, MinPauseBetweenCheckpoints: 5000 };
  }
  return { CheckpointingEnabled: true, CheckpointInterval: 60_000, MinPauseBetweenCheckpoints: 5000, ...given };
}

function parallelismConfiguration(given: any): Record<string, unknown> {
  if (!given || given.ConfigurationType === 'DEFAULT') return { ConfigurationType: 'DEFAULT', Parallelism: 1, ParallelismPerKPU: 1, AutoScalingEnabled: false };
  return { Parallelism: 1, ParallelismPerKPU: 1, AutoScalingEnabled: false, ...given };
}
