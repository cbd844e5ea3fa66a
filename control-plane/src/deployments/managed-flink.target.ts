import { Logger } from '@nestjs/common';
import {
  ApplicationDetail,
  ConcurrentModificationException,
  CreateApplicationCommand,
  DeleteApplicationCommand,
  DescribeApplicationCommand,
  DescribeApplicationOperationCommand,
  KinesisAnalyticsV2Client,
  ListApplicationOperationsCommand,
  ListApplicationsCommand,
  ListApplicationSnapshotsCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  SnapshotDetails,
  StartApplicationCommand,
  StopApplicationCommand,
  UpdateApplicationCommand,
} from '@aws-sdk/client-kinesis-analytics-v2';
import type { ManagedFlinkSettings } from '../config/config';
import { applicationNameOf, DeploymentTarget, JOB_NAME_PREFIX, JobPhase, JobSpec, ObservedJob } from './deployment-target';
import { PropertyGroup, samePropertyGroups, toPropertyGroups } from './runtime-properties';

/** Managed Flink's application states as an analysis sees them. */
const PHASES: Record<string, JobPhase> = {
  STARTING: 'STARTING', UPDATING: 'STARTING', AUTOSCALING: 'STARTING',
  RUNNING: 'RUNNING', MAINTENANCE: 'RUNNING',
  STOPPING: 'STOPPING', FORCE_STOPPING: 'STOPPING', DELETING: 'STOPPING',
  READY: 'FINISHED',
  ROLLING_BACK: 'FAILED', ROLLED_BACK: 'FAILED',
};
/** States in which the application runs (or is about to) the job of its generation. */
const RUNS = new Set(['STARTING', 'RUNNING', 'UPDATING', 'AUTOSCALING', 'MAINTENANCE']);
/** States that end by themselves: wait them out before acting. */
const TRANSIENT = new Set(['STOPPING', 'FORCE_STOPPING', 'DELETING', 'ROLLING_BACK']);

export const MANAGED_FLINK_RUNTIME = 'FLINK-1_20';
const STOP_ATTEMPTS = 3;

/** The part of the SDK client the target uses; tests pass their own. */
export interface ManagedFlinkClient {
  send(command: { input: object }): Promise<any>;
}

export interface ManagedFlinkTargetOptions {
  /** How often a wait polls DescribeApplication (a real stop takes a minute or two). */
  pollMs?: number;
  /** The longest wait for an application to stop. */
  stopTimeoutMs?: number;
  /** FLAGSTREAM_JOB_NAME_PREFIX: only applications named so are this control plane's. */
  jobNamePrefix?: string;
}

/**
 * Amazon Managed Service for Apache Flink through its API (kinesisanalyticsv2): one
 * application per analysis generation, running the runner JAR from S3 with the SQL in its
 * runtime properties. Its name is the job name without the nonce, so a restore (same
 * generation) finds the snapshots of the same application; a new generation is a new
 * application, and the old one is deleted by `cancel`. Job ids are application names.
 * Stop takes a snapshot (snapshots are enabled); a restore starts from a named snapshot.
 */
export class ManagedFlinkTarget implements DeploymentTarget {
  readonly name = 'managed-flink';
  private readonly logger = new Logger('ManagedFlink');
  private readonly pollMs: number;
  private readonly stopTimeoutMs: number;
  private readonly jobNamePrefix: string;

  constructor(
    private readonly settings: Pick<ManagedFlinkSettings, 'roleArn' | 'code'>,
    private readonly client: ManagedFlinkClient = new KinesisAnalyticsV2Client({}),
    options: ManagedFlinkTargetOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 2000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 10 * 60_000;
    this.jobNamePrefix = options.jobNamePrefix ?? JOB_NAME_PREFIX;
  }

  /** The client the control plane uses: region and credentials from the SDK's own chain, endpoint from AWS_ENDPOINT_URL_KINESIS_ANALYTICS_V2 if set. */
  static client(region: string): KinesisAnalyticsV2Client {
    return new KinesisAnalyticsV2Client({ region, maxAttempts: 3, requestHandler: { connectionTimeout: 5000, requestTimeout: 30_000 } });
  }

  async ping(): Promise<void> {
    await this.client.send(new ListApplicationsCommand({ Limit: 1 }));
  }

  async deploy(job: JobSpec): Promise<string> {
    const name = applicationNameOf(job.name);
    if (!name) throw new Error(`job name ${job.name} does not end in -g<generation>-<nonce>`);
    const groups = toPropertyGroups(job.sql, job.name);
    if (job.restoreFrom !== undefined && !/^[a-zA-Z0-9_.-]{1,256}$/.test(job.restoreFrom)) {
      throw new Error(`cannot restore ${name} from ${job.restoreFrom}: Managed Flink restores only its own snapshots`);
    }

    let app = await this.settled(name);
    if (app && RUNS.has(app.ApplicationStatus!)) {
      // A deployment of this generation that a crashed control plane began, or one the reconciler lost track of.
      this.logger.log(`adopting application ${name} (${app.ApplicationStatus})`);
      return name;
    }
    if (app?.ApplicationStatus === 'ROLLED_BACK') {
      await this.send(new StopApplicationCommand({ ApplicationName: name, Force: true }));
      app = await this.waitFor(name, (a) => !a || !TRANSIENT.has(a.ApplicationStatus!), this.stopTimeoutMs);
    }
    if (!app) await this.create(name, groups);
    else await this.update(app, groups);

    await this.send(
      new StartApplicationCommand({
        ApplicationName: name,
        RunConfiguration: {
          ApplicationRestoreConfiguration: job.restoreFrom
            ? { ApplicationRestoreType: 'RESTORE_FROM_CUSTOM_SNAPSHOT', SnapshotName: job.restoreFrom }
            : { ApplicationRestoreType: 'SKIP_RESTORE_FROM_SNAPSHOT' },
          // Never drop state a restore cannot map: fail loudly instead (docs/counting.md §6).
          FlinkRunConfiguration: { AllowNonRestoredState: false },
        },
      }),
    );
    this.logger.log(`started application ${name}${job.restoreFrom ? ` from snapshot ${job.restoreFrom}` : ''}`);
    return name;
  }

  private async create(name: string, groups: PropertyGroup[]): Promise<void> {
    try {
      await this.send(
        new CreateApplicationCommand({
          ApplicationName: name,
          ApplicationDescription: 'A Flagstream analysis (one application per analysis generation).',
          RuntimeEnvironment: MANAGED_FLINK_RUNTIME,
          ServiceExecutionRole: this.settings.roleArn,
          ApplicationMode: 'STREAMING',
          ApplicationConfiguration: {
            ApplicationCodeConfiguration: {
              CodeContentType: 'ZIPFILE',
              CodeContent: { S3ContentLocation: { BucketARN: this.settings.code.bucketArn, FileKey: this.settings.code.fileKey } },
            },
            EnvironmentProperties: { PropertyGroups: groups },
            FlinkApplicationConfiguration: {
              // The service's checkpointing (every minute): Flink restarts a failing job from it.
              CheckpointConfiguration: { ConfigurationType: 'DEFAULT' },
              // One KPU (plus the orchestration KPU every application has): the least an application costs.
              ParallelismConfiguration: { ConfigurationType: 'CUSTOM', Parallelism: 1, ParallelismPerKPU: 1, AutoScalingEnabled: false },
            },
            // A stop takes a snapshot; a start restores a named one.
            ApplicationSnapshotConfiguration: { SnapshotsEnabled: true },
          },
        }),
      );
      this.logger.log(`created application ${name}`);
    } catch (error) {
      // Created meanwhile (a retry after a lost answer): update it instead.
      if (!(error instanceof ResourceInUseException)) throw error;
      const app = await this.describe(name);
      if (!app) throw error;
      await this.update(app, groups);
    }
  }

  /** New properties (and code location) for a stopped application; nothing when they are the same. */
  private async update(app: ApplicationDetail, groups: PropertyGroup[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const configuration = app.ApplicationConfigurationDescription;
      const current = (configuration?.EnvironmentPropertyDescriptions?.PropertyGroupDescriptions ?? []) as PropertyGroup[];
      const location = configuration?.ApplicationCodeConfigurationDescription?.CodeContentDescription?.S3ApplicationCodeLocationDescription;
      const codeChanged = location?.BucketARN !== this.settings.code.bucketArn || location?.FileKey !== this.settings.code.fileKey;
      if (samePropertyGroups(current, groups) && !codeChanged) return;
      try {
        await this.send(
          new UpdateApplicationCommand({
            ApplicationName: app.ApplicationName,
            CurrentApplicationVersionId: app.ApplicationVersionId,
            ApplicationConfigurationUpdate: {
              EnvironmentPropertyUpdates: { PropertyGroups: groups },
              ...(codeChanged
                ? { ApplicationCodeConfigurationUpdate: { CodeContentUpdate: { S3ContentLocationUpdate: { BucketARNUpdate: this.settings.code.bucketArn, FileKeyUpdate: this.settings.code.fileKey } } } }
                : {}),
            },
          }),
        );
        return;
      } catch (error) {
        // Someone updated it since we looked: look again and update that version.
        if (!(error instanceof ConcurrentModificationException) || attempt >= 3) throw error;
        const fresh = await this.describe(app.ApplicationName!);
        if (!fresh) throw error;
        app = fresh;
      }
    }
  }

  async observe(): Promise<Map<string, ObservedJob>> {
    const jobs = new Map<string, ObservedJob>();
    let token: string | undefined;
    // One page (50 applications) per pass for up to 50 analyses; further pages only when there are more.
    for (let page = 0; page < 1000; page++) {
      const out = await this.client.send(new ListApplicationsCommand({ Limit: 50, NextToken: token }));
      for (const app of out.ApplicationSummaries ?? []) {
        if (!app.ApplicationName?.startsWith(this.jobNamePrefix)) continue;
        const state = app.ApplicationStatus ?? 'UNKNOWN';
        jobs.set(app.ApplicationName, { id: app.ApplicationName, name: app.ApplicationName, state, phase: PHASES[state] ?? 'STARTING', retained: state !== 'DELETING' });
      }
      token = out.NextToken;
      if (!token) break;
    }
    return jobs;
  }

  async stopWithSavepoint(jobId: string): Promise<string | undefined> {
    for (let attempt = 1; attempt <= STOP_ATTEMPTS; attempt++) {
      const app = await this.settled(jobId);
      if (!app) return undefined;
      if (!RUNS.has(app.ApplicationStatus!)) return undefined; // stopped already, not by us: no new snapshot
      const since = Date.now();
      let operationId: string | undefined;
      try {
        operationId = (await this.send<{ OperationId?: string }>(new StopApplicationCommand({ ApplicationName: jobId, Force: false }))).OperationId;
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        // Still starting, say: a snapshot cannot be taken yet.
        if (!(error instanceof ResourceInUseException)) throw error;
        this.logger.warn(`stop of ${jobId} refused (${error.message}; attempt ${attempt} of ${STOP_ATTEMPTS})`);
        await sleep(Math.max(this.pollMs, 2000));
        continue;
      }
      const stopped = operationId ? await this.waitOperation(jobId, operationId) : await this.waitStopped(jobId, since);
      if (stopped === 'gone') return undefined;
      if (stopped === 'stopped') return this.newestSnapshot(jobId, true);
      this.logger.warn(`stop with a snapshot of ${jobId} did not stop it${typeof stopped === 'object' ? ` (${stopped.error})` : ''} (attempt ${attempt} of ${STOP_ATTEMPTS})`);
    }
    this.logger.warn(`stopping ${jobId} without a snapshot`);
    await this.send(new StopApplicationCommand({ ApplicationName: jobId, Force: true }));
    const app = await this.waitFor(jobId, (a) => !a || !TRANSIENT.has(a.ApplicationStatus!), this.stopTimeoutMs);
    if (app && RUNS.has(app.ApplicationStatus!)) throw new Error(`application ${jobId} is still ${app.ApplicationStatus} after a forced stop`);
    return undefined;
  }

  /** How a stop operation ended (DescribeApplicationOperation): 'stopped', 'gone', or the failure. */
  private async waitOperation(name: string, operationId: string): Promise<'stopped' | 'gone' | { error: string }> {
    const started = Date.now();
    for (;;) {
      let details;
      try {
        details = (await this.client.send(new DescribeApplicationOperationCommand({ ApplicationName: name, OperationId: operationId }))).ApplicationOperationInfoDetails;
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return (await this.describe(name)) ? { error: `operation ${operationId} is unknown` } : 'gone';
        throw error;
      }
      const status = details?.OperationStatus;
      if (status === 'SUCCESSFUL') {
        const app = await this.settled(name);
        return !app ? 'gone' : app.ApplicationStatus === 'READY' ? 'stopped' : { error: `the stop succeeded, but the application is ${app.ApplicationStatus}` };
      }
      if (status && status !== 'IN_PROGRESS') return { error: `the stop ${status}${details?.OperationFailureDetails?.ErrorInfo?.ErrorString ? `: ${details.OperationFailureDetails.ErrorInfo.ErrorString}` : ''}` };
      if (Date.now() - started > this.stopTimeoutMs) return { error: `the stop did not end within ${Math.round(this.stopTimeoutMs / 1000)} s` };
      await sleep(this.pollMs);
    }
  }

  /** Without an operation id: 'stopped' (READY), 'gone', or 'running' when the application went back to running (the stop failed) or never stopped. */
  private async waitStopped(name: string, since: number): Promise<'stopped' | 'gone' | 'running'> {
    let sawStopping = false;
    for (;;) {
      const app = await this.describe(name);
      if (!app) return 'gone';
      const status = app.ApplicationStatus!;
      if (status === 'READY') return 'stopped';
      if (TRANSIENT.has(status)) sawStopping = true;
      else if (RUNS.has(status) && (sawStopping || Date.now() - since > 60_000)) return 'running';
      else if (!RUNS.has(status)) return 'running'; // ROLLED_BACK: not stopped by the stop
      if (Date.now() - since > this.stopTimeoutMs) return 'running';
      await sleep(this.pollMs);
    }
  }

  async latestCheckpoint(jobId: string): Promise<string | undefined> {
    return this.newestSnapshot(jobId, false);
  }

  /** The newest READY snapshot's name; `waitCreating`: first wait for one still being created. */
  private async newestSnapshot(name: string, waitCreating: boolean): Promise<string | undefined> {
    const started = Date.now();
    for (;;) {
      let snapshots: SnapshotDetails[];
      try {
        snapshots = await this.snapshots(name);
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return undefined;
        throw error;
      }
      const newest = (status: string) =>
        snapshots.filter((s) => s.SnapshotStatus === status).sort((a, b) => (b.SnapshotCreationTimestamp?.getTime() ?? 0) - (a.SnapshotCreationTimestamp?.getTime() ?? 0))[0];
      const ready = newest('READY');
      const creating = newest('CREATING');
      const creatingIsNewer = creating && (!ready || (creating.SnapshotCreationTimestamp?.getTime() ?? 0) > (ready.SnapshotCreationTimestamp?.getTime() ?? 0));
      if (!waitCreating || !creatingIsNewer || Date.now() - started > this.stopTimeoutMs) return ready?.SnapshotName;
      await sleep(this.pollMs);
    }
  }

  private async snapshots(name: string): Promise<SnapshotDetails[]> {
    const out: SnapshotDetails[] = [];
    let token: string | undefined;
    for (let page = 0; page < 100; page++) {
      const reply = await this.client.send(new ListApplicationSnapshotsCommand({ ApplicationName: name, Limit: 50, NextToken: token }));
      out.push(...(reply.SnapshotSummaries ?? []));
      token = reply.NextToken;
      if (!token) break;
    }
    return out;
  }

  async cancel(jobId: string): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const app = await this.describe(jobId);
      if (!app || app.ApplicationStatus === 'DELETING') return;
      try {
        await this.send(new DeleteApplicationCommand({ ApplicationName: jobId, CreateTimestamp: app.CreateTimestamp }));
        this.logger.log(`deleting application ${jobId}`);
        return;
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return;
        if (attempt === 3) throw error;
        if (error instanceof ResourceInUseException) {
          // Not deletable in this state (starting, say): stop it without a snapshot, then delete.
          this.logger.warn(`application ${jobId} cannot be deleted yet (${error.message}); stopping it first`);
          await this.send(new StopApplicationCommand({ ApplicationName: jobId, Force: true })).catch(() => undefined);
          await this.waitFor(jobId, (a) => !a || !(TRANSIENT.has(a.ApplicationStatus!) || a.ApplicationStatus === 'STARTING'), this.stopTimeoutMs);
        } else if (!(error instanceof ConcurrentModificationException)) {
          throw error;
        }
      }
    }
  }

  /** The application's state, a rollback, and the newest failed operation's error, as the service tells them. */
  async failureCause(jobId: string): Promise<string | undefined> {
    const app = await this.describe(jobId);
    if (!app) return 'the application is gone';
    const rolledBack = app.ApplicationVersionRolledBackFrom
      ? `version ${app.ApplicationVersionRolledBackFrom} was rolled back to ${app.ApplicationVersionRolledBackTo ?? 'an earlier one'}`
      : undefined;
    if (RUNS.has(app.ApplicationStatus!) && !rolledBack) return undefined;
    const failed = await this.lastFailedOperation(jobId).catch(() => undefined);
    return [`Managed Flink application ${app.ApplicationStatus}`, rolledBack, failed ?? 'see its CloudWatch logs'].filter(Boolean).join('; ');
  }

  private async lastFailedOperation(name: string): Promise<string | undefined> {
    const list = await this.client.send(new ListApplicationOperationsCommand({ ApplicationName: name, OperationStatus: 'FAILED', Limit: 1 }));
    const op = list.ApplicationOperationInfoList?.[0];
    if (!op?.OperationId) return undefined;
    const details = (await this.client.send(new DescribeApplicationOperationCommand({ ApplicationName: name, OperationId: op.OperationId }))).ApplicationOperationInfoDetails;
    const error = details?.OperationFailureDetails?.ErrorInfo?.ErrorString;
    return `${op.Operation} failed${error ? `: ${error}` : ''}`;
  }

  private async describe(name: string): Promise<ApplicationDetail | undefined> {
    try {
      return (await this.client.send(new DescribeApplicationCommand({ ApplicationName: name }))).ApplicationDetail;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return undefined;
      throw error;
    }
  }

  /** The application once it is in no state that ends by itself (undefined when it is gone). */
  private settled(name: string): Promise<ApplicationDetail | undefined> {
    return this.waitFor(name, (a) => !a || !TRANSIENT.has(a.ApplicationStatus!), this.stopTimeoutMs);
  }

  private async waitFor(name: string, done: (app: ApplicationDetail | undefined) => boolean, timeoutMs: number): Promise<ApplicationDetail | undefined> {
    const started = Date.now();
    for (;;) {
      const app = await this.describe(name);
      if (done(app)) return app;
      if (Date.now() - started > timeoutMs) throw new Error(`application ${name} is still ${app?.ApplicationStatus} after ${Math.round(timeoutMs / 1000)} s`);
      await sleep(this.pollMs);
    }
  }

  private send<T>(command: { input: object }): Promise<T> {
    return this.client.send(command);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
