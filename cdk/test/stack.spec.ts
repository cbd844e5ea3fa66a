import { Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IConstruct } from 'constructs';
import { loadConfig } from '../../control-plane/src/config/config';
import { toEventRecord } from '../../control-plane/src/events/event-record';
import { partitionPath, toLakeRecord } from '../../control-plane/src/lake/lake-record';
import { createApp } from '../lib/app';
import { MANAGED_FLINK_ACTIONS } from '../lib/control-plane';
import { EVENT_SOURCE } from '../lib/lake-transform';
import { ACCOUNT, asList, evaluate, logicalIdOf, policyDocuments, REGION, resourcesOf, Synthesized, synthesize } from './helpers';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});
afterAll(() => s?.cleanup());

const arnOfStream = (name: string) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/Flagstream-${name}`;
const roleArn = (prefix: string) => `arn:aws:iam::${ACCOUNT}:role/${logicalIdOf(s.json, 'AWS::IAM::Role', prefix)}`;

describe('the stack', () => {
  it('holds each part once', () => {
    const counts: Record<string, number> = {
      'AWS::Kinesis::Stream': 2,
      'AWS::Kinesis::StreamConsumer': 1,
      // The lake transform, and CDK's BucketDeployment handler that copies the runner JAR.
      'AWS::Lambda::Function': 2,
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::SQS::Queue': 1,
      'AWS::KinesisFirehose::DeliveryStream': 1,
      'AWS::Glue::Database': 1,
      'AWS::Glue::Table': 1,
      // Lake, code, access logs.
      'AWS::S3::Bucket': 3,
      'Custom::CDKBucketDeployment': 1,
      'AWS::ECS::Cluster': 1,
      'AWS::ECS::TaskDefinition': 1,
      'AWS::ECS::Service': 1,
      'AWS::ElasticLoadBalancingV2::LoadBalancer': 1,
      'AWS::ElasticLoadBalancingV2::Listener': 1,
      'AWS::EFS::FileSystem': 1,
      'AWS::SecretsManager::Secret': 1,
      'AWS::SNS::Topic': 1,
      'AWS::CloudWatch::Alarm': 13,
      // Firehose, lake transform, Flink, BucketDeployment, flow logs, task, task execution.
      'AWS::IAM::Role': 7,
    };
    for (const [type, count] of Object.entries(counts)) s.template.resourceCountIs(type, count);
  });

  it('takes its deploy-time settings as parameters', () => {
    expect(s.json.Parameters).toMatchObject({
      StreamRetentionDays: { Type: 'Number', Default: 1, MinValue: 1, MaxValue: 7 },
      EventsStreamShards: { Type: 'Number', Default: 2, MinValue: 1 },
      ResultsStreamShards: { Type: 'Number', Default: 2, MinValue: 1 },
      MaxPools: { Type: 'Number', Default: 4, MinValue: 1, MaxValue: 9 },
      ControlPlaneDesiredCount: { Type: 'Number', Default: 1, AllowedValues: ['0', '1'] },
      AlarmEmail: { Type: 'String', Default: '' },
    });
  });

  it('keeps both streams as many days as the parameter says, encrypted with the AWS managed key', () => {
    const streams = resourcesOf(s.json, 'AWS::Kinesis::Stream');
    for (const [, stream] of streams) {
      expect(stream.Properties.RetentionPeriodHours).toEqual({ 'Fn::FindInMap': ['RetentionHours', { Ref: 'StreamRetentionDays' }, 'hours'] });
      expect(stream.Properties.StreamEncryption).toEqual({ EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' });
      expect(stream.Properties.StreamModeDetails).toEqual({ StreamMode: 'PROVISIONED' });
      for (const days of [1, 2, 3, 4, 5, 6, 7]) {
        expect(evaluate(s.json, stream.Properties.RetentionPeriodHours, { StreamRetentionDays: String(days) })).toBe(days * 24);
      }
    }
    expect(streams.map(([, r]) => evaluate(s.json, r.Properties.Name)).sort()).toEqual(['Flagstream-events', 'Flagstream-results']);
    // Streams go with the stack (the lake keeps the events); buckets and the control plane's store stay.
    expect(streams.map(([, r]) => (r as { DeletionPolicy?: string }).DeletionPolicy)).toEqual(['Delete', 'Delete']);
    for (const type of ['AWS::S3::Bucket', 'AWS::EFS::FileSystem']) {
      for (const [, r] of resourcesOf(s.json, type)) expect((r as { DeletionPolicy?: string }).DeletionPolicy).toBe('Retain');
    }
    expect(streams.map(([, r]) => r.Properties.ShardCount)).toEqual(expect.arrayContaining([{ Ref: 'EventsStreamShards' }, { Ref: 'ResultsStreamShards' }]));
  });

  it('reads the events stream into the lake transform through its own consumer, bisecting failed batches into a DLQ', () => {
    const consumer = logicalIdOf(s.json, 'AWS::Kinesis::StreamConsumer', 'LakeTransformConsumer');
    s.template.hasResourceProperties('AWS::Kinesis::StreamConsumer', { StreamARN: { 'Fn::GetAtt': [logicalIdOf(s.json, 'AWS::Kinesis::Stream', 'StreamsEvents'), 'Arn'] } });
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [consumer, 'ConsumerARN'] },
      FunctionName: { Ref: logicalIdOf(s.json, 'AWS::Lambda::Function', 'LakeTransformFunction') },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 5,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 6 * 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalIdOf(s.json, 'AWS::SQS::Queue', 'LakeTransformDeadLetters'), 'Arn'] } } },
    });
    // Partial batch responses would keep the batch from being bisected.
    const [[, mapping]] = resourcesOf(s.json, 'AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties.FunctionResponseTypes).toBeUndefined();
    // A record given up on must still be in the stream (≥ 24 h) when someone reads the DLQ.
    expect(EVENT_SOURCE.maxRecordAge.toHours()).toBeLessThan(24);
    s.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
  });

  it('runs the handler of cdk/lambda on Node.js ≥ 20, bundled with toLakeRecord and without the AWS SDK', () => {
    const [id, fn] = resourcesOf(s.json, 'AWS::Lambda::Function').find(([key]) => key.startsWith('LakeTransformFunction'))!;
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Timeout: 60,
      Environment: { Variables: { DELIVERY_STREAM_NAME: { Ref: logicalIdOf(s.json, 'AWS::KinesisFirehose::DeliveryStream', 'LakeDelivery') } } },
      LoggingConfig: { LogGroup: { Ref: expect.stringMatching(/^LakeTransformLogs/) } },
    });
    expect(Number(fn.Properties.Runtime.match(/^nodejs(\d+)/)[1])).toBeGreaterThanOrEqual(20);
    const assetHash = String(fn.Properties.Code.S3Key).replace(/\.zip$/, '');
    const code = readFileSync(join(s.app.outdir, `asset.${assetHash}`, 'index.js'), 'utf8');
    expect(code).toContain('function toLakeRecord(');
    expect(code).toContain('require("@aws-sdk/client-firehose")');
    expect(id).toBeDefined();
  });

  it('delivers into the lake with Firehose: dynamic partitions by tenant, date and hour, GZIP JSON lines', () => {
    const bucket = logicalIdOf(s.json, 'AWS::S3::Bucket', 'LakeBucket');
    s.template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
      ExtendedS3DestinationConfiguration: {
        BucketARN: { 'Fn::GetAtt': [bucket, 'Arn'] },
        Prefix: 'events/tenant=!{partitionKeyFromQuery:tenant}/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/',
        ErrorOutputPrefix: Match.stringLikeRegexp('^errors/!\\{firehose:error-output-type\\}/'),
        CompressionFormat: 'GZIP',
        FileExtension: '.json.gz',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 128 },
        DynamicPartitioningConfiguration: { Enabled: true },
        ProcessingConfiguration: {
          Enabled: true,
          Processors: [
            { Type: 'RecordDeAggregation', Parameters: [{ ParameterName: 'SubRecordType', ParameterValue: 'JSON' }] },
            {
              Type: 'MetadataExtraction',
              Parameters: [
                { ParameterName: 'MetadataExtractionQuery', ParameterValue: '{tenant: .tenant, dt: (.receivedAt / 1000 | floor | strftime("%Y-%m-%d")), hour: (.receivedAt / 1000 | floor | strftime("%H"))}' },
                { ParameterName: 'JsonParsingEngine', ParameterValue: 'JQ-1.6' },
              ],
            },
            { Type: 'AppendDelimiterToRecord' },
          ],
        },
        CloudWatchLoggingOptions: { Enabled: true },
      },
    });
  });

  const jq = spawnSync('jq', ['--version'], { encoding: 'utf8' });
  (jq.status === 0 ? it : it.skip)(`computes with its JQ (${jq.stdout?.trim() || 'jq missing'}) the partition toLakeRecord computes`, () => {
    const [[, stream]] = resourcesOf(s.json, 'AWS::KinesisFirehose::DeliveryStream');
    const config = stream.Properties.ExtendedS3DestinationConfiguration;
    const query = config.ProcessingConfiguration.Processors[1].Parameters[0].ParameterValue as string;
    const times = [
      0, Date.UTC(2026, 10, 26, 23, 59, 59, 999), Date.UTC(2026, 10, 27, 0, 0, 0, 0), Date.UTC(2028, 1, 29, 9, 30, 0, 1),
      Date.UTC(2026, 2, 29, 1, 0, 0, 500), Date.UTC(2099, 11, 31, 23, 0, 0, 0), 1_700_000_000_123,
    ];
    for (const receivedAt of times) {
      for (const tenant of ['acme', 'a.b-c_d', '0tenant']) {
        const record = toEventRecord({ kind: 'custom', creationDate: receivedAt, key: 'k', context: { key: 'u' } } as never, { tenant, environment: 'prod', payloadId: 'p', eventIndex: 0, receivedAt }, 3600_000);
        const lake = toLakeRecord(JSON.stringify(record))!;
        // Firehose parses the line Firehose was given; a far-off zone must not matter.
        const keys = JSON.parse(execFileSync('jq', ['-c', query], { input: lake.line, env: { ...process.env, TZ: 'Pacific/Kiritimati' }, encoding: 'utf8' }));
        expect(keys).toEqual(lake.partition);
        const prefix = (config.Prefix as string).replace(/!\{partitionKeyFromQuery:(\w+)\}/g, (_, k: string) => keys[k]);
        expect(prefix).toBe(`events/${partitionPath(lake.partition)}`);
      }
    }
  });

  it('describes the lake to Athena: a Glue table over JSON lines, partitions projected (tenant injected, dt a date, hour an integer)', () => {
    const bucket = logicalIdOf(s.json, 'AWS::S3::Bucket', 'LakeBucket');
    s.template.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: { Name: 'flagstream' } });
    s.template.hasResourceProperties('AWS::Glue::Table', {
      DatabaseName: 'flagstream',
      TableInput: {
        Name: 'events',
        TableType: 'EXTERNAL_TABLE',
        PartitionKeys: [{ Name: 'tenant', Type: 'string' }, Match.objectLike({ Name: 'dt', Type: 'string' }), Match.objectLike({ Name: 'hour', Type: 'int' })],
        Parameters: Match.objectLike({
          'projection.enabled': 'true',
          'projection.tenant.type': 'injected',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.interval.unit': 'DAYS',
          'projection.hour.type': 'integer',
          'projection.hour.range': '0,23',
          'projection.hour.digits': '2',
          'storage.location.template': { 'Fn::Join': ['', ['s3://', { Ref: bucket }, '/events/tenant=${tenant}/dt=${dt}/hour=${hour}/']] },
        }),
        StorageDescriptor: Match.objectLike({
          Location: { 'Fn::Join': ['', ['s3://', { Ref: bucket }, '/events/']] },
          SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe', Parameters: Match.objectLike({ 'ignore.malformed.json': 'true' }) },
        }),
      },
    });
    const [[, table]] = resourcesOf(s.json, 'AWS::Glue::Table');
    const columns = table.Properties.TableInput.StorageDescriptor.Columns.map((c: { Name: string }) => c.Name);
    // A partition key cannot also be a column; the record's own fields are (lower case: the SerDe matches case-insensitively).
    expect(columns).not.toContain('tenant');
    expect(columns).toEqual(expect.arrayContaining(['environment', 'payloadid', 'eventindex', 'receivedat', 'eventtime', 'kind', 'key', 'variation', 'contextkeys']));
  });

  it('keeps its buckets private, encrypted, TLS-only and logged; the code bucket versioned', () => {
    const buckets = resourcesOf(s.json, 'AWS::S3::Bucket');
    const logs = logicalIdOf(s.json, 'AWS::S3::Bucket', 'AccessLogs');
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      expect(bucket.Properties.BucketEncryption).toEqual({ ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] });
      if (id !== logs) expect(bucket.Properties.LoggingConfiguration).toMatchObject({ DestinationBucketName: { Ref: logs } });
      const policy = resourcesOf(s.json, 'AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === id);
      expect(policy?.[1].Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    }
    expect(s.json.Resources[logicalIdOf(s.json, 'AWS::S3::Bucket', 'FlinkCodeBucket')].Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
  });

  it('deploys the runner JAR to the code bucket as is, under a key named by its content', () => {
    const code = logicalIdOf(s.json, 'AWS::S3::Bucket', 'FlinkCodeBucket');
    s.template.hasResourceProperties('Custom::CDKBucketDeployment', {
      DestinationBucketName: { Ref: code },
      DestinationBucketKeyPrefix: 'runner/',
      Extract: false,
      Prune: false,
      SourceObjectKeys: [Match.stringLikeRegexp('^[0-9a-f]{64}\\.jar$')],
    });
  });
});

describe('the control plane service', () => {
  const container = () => {
    const [[, task]] = resourcesOf(s.json, 'AWS::ECS::TaskDefinition');
    return task.Properties.ContainerDefinitions.find((c: { Name: string }) => c.Name === 'control-plane');
  };

  it('wires every setting the managed-flink target needs from the stack, and the control plane accepts them', () => {
    const env = Object.fromEntries(container().Environment.map((e: { Name: string; Value: unknown }) => [e.Name, evaluate(s.json, e.Value)]));
    expect(Object.keys(env).sort()).toEqual([
      'AWS_REGION', 'FLAGSTREAM_CREATE_STREAMS', 'FLAGSTREAM_DATA_DIR', 'FLAGSTREAM_EVENTS_STREAM', 'FLAGSTREAM_EVENTS_STREAM_ARN', 'FLAGSTREAM_LAKE',
      'FLAGSTREAM_MANAGED_FLINK_CODE', 'FLAGSTREAM_MANAGED_FLINK_ROLE_ARN', 'FLAGSTREAM_MAX_POOLS', 'FLAGSTREAM_RESULTS_STREAM',
      'FLAGSTREAM_RESULTS_STREAM_ARN', 'FLAGSTREAM_STREAM_RETENTION_HOURS', 'FLAGSTREAM_TARGET', 'FLAGSTREAM_VALIDATOR_URL',
      'HOST', 'NODE_NO_WARNINGS', 'PORT',
    ]);
    const jarKey = s.json.Resources[logicalIdOf(s.json, 'Custom::CDKBucketDeployment', 'FlinkRunnerCustomResource')].Properties.SourceObjectKeys[0];
    const codeBucket = evaluate(s.json, { Ref: logicalIdOf(s.json, 'AWS::S3::Bucket', 'FlinkCodeBucket') });
    expect(env).toEqual({
      HOST: '0.0.0.0',
      PORT: '8080',
      NODE_NO_WARNINGS: '1',
      FLAGSTREAM_TARGET: 'managed-flink',
      AWS_REGION: REGION,
      FLAGSTREAM_EVENTS_STREAM: 'Flagstream-events',
      FLAGSTREAM_RESULTS_STREAM: 'Flagstream-results',
      FLAGSTREAM_EVENTS_STREAM_ARN: arnOfStream('events'),
      FLAGSTREAM_RESULTS_STREAM_ARN: arnOfStream('results'),
      FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: roleArn('FlinkServiceRole'),
      FLAGSTREAM_MANAGED_FLINK_CODE: `s3://${codeBucket}/runner/${jarKey}`,
      FLAGSTREAM_CREATE_STREAMS: 'false',
      FLAGSTREAM_STREAM_RETENTION_HOURS: 24,
      FLAGSTREAM_MAX_POOLS: '4',
      FLAGSTREAM_DATA_DIR: '/data',
      FLAGSTREAM_LAKE: 'off',
      FLAGSTREAM_VALIDATOR_URL: 'http://127.0.0.1:8082',
    });
    // The admin key comes from the generated secret, never the environment.
    expect(container().Secrets).toEqual([{ Name: 'FLAGSTREAM_ADMIN_KEY', ValueFrom: { Ref: logicalIdOf(s.json, 'AWS::SecretsManager::Secret', 'ControlPlaneAdminKey') } }]);
    s.template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 48 }) });

    // What the control plane makes of it (control-plane/src/config/config.ts), with the secret set as ECS sets it.
    const config = loadConfig({ ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])), FLAGSTREAM_ADMIN_KEY: 'secret' });
    expect(config).toMatchObject({
      target: 'managed-flink',
      host: '0.0.0.0',
      port: 8080,
      dataDir: '/data',
      adminKey: 'secret',
      awsRegion: REGION,
      kinesisEndpoint: undefined,
      eventsStream: 'Flagstream-events',
      resultsStream: 'Flagstream-results',
      createStreams: false,
      streamRetentionHours: 24,
      maxPools: 4,
      lakeEnabled: false,
      validatorUrl: 'http://127.0.0.1:8082',
      managedFlink: {
        roleArn: roleArn('FlinkServiceRole'),
        code: { bucketArn: `arn:aws:s3:::${codeBucket}`, fileKey: `runner/${jarKey}` },
        eventsStreamArn: arnOfStream('events'),
        resultsStreamArn: arnOfStream('results'),
      },
    });
  });

  it('keeps its data dir on EFS (encrypted in transit, IAM-authorized, through an access point)', () => {
    const [[, task]] = resourcesOf(s.json, 'AWS::ECS::TaskDefinition');
    expect(task.Properties.Volumes).toEqual([{
      Name: 'data',
      EFSVolumeConfiguration: {
        FilesystemId: { Ref: logicalIdOf(s.json, 'AWS::EFS::FileSystem', 'ControlPlaneData') },
        TransitEncryption: 'ENABLED',
        AuthorizationConfig: { AccessPointId: { Ref: expect.stringMatching(/^ControlPlaneDataDataAccess/) }, IAM: 'ENABLED' },
      },
    }]);
    expect(container().MountPoints).toEqual([{ ContainerPath: '/data', SourceVolume: 'data', ReadOnly: false }]);
    s.template.hasResourceProperties('AWS::EFS::FileSystem', { Encrypted: true });
  });

  it('runs the SQL validator beside it, and one task at a time behind a public load balancer', () => {
    const [[, task]] = resourcesOf(s.json, 'AWS::ECS::TaskDefinition');
    const validator = task.Properties.ContainerDefinitions.find((c: { Name: string }) => c.Name === 'sql-validator');
    expect(validator.Command).toEqual(['--no-cluster', '--validator-port', '8082', '--runner-jar', '/app/flagstream-runner.jar', '--data-dir', '/tmp/flink']);
    expect(container().DependsOn).toEqual([{ ContainerName: 'sql-validator', Condition: 'START' }]);
    s.template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: { Ref: 'ControlPlaneDesiredCount' },
      DeploymentConfiguration: Match.objectLike({ MaximumPercent: 100, MinimumHealthyPercent: 0 }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing' });
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/health', Matcher: { HttpCode: '200,503' }, Port: 80 });
    // Built from cdk/control-plane.Dockerfile by `cdk deploy`; synth only stages the context.
    const assets = JSON.parse(readFileSync(join(s.app.outdir, 'Flagstream.assets.json'), 'utf8'));
    const images = Object.values(assets.dockerImages) as { source: { dockerFile: string; dockerBuildTarget: string; directory: string } }[];
    expect(images.map((i) => [i.source.dockerFile, i.source.dockerBuildTarget]).sort()).toEqual([['cdk/control-plane.Dockerfile', 'control-plane'], ['cdk/control-plane.Dockerfile', 'validator']]);
    for (const image of images) {
      const context = join(s.app.outdir, image.source.directory);
      expect(existsSync(join(context, 'cdk/control-plane.Dockerfile'))).toBe(true);
      expect(existsSync(join(context, 'control-plane/src/main.ts'))).toBe(true);
      expect(existsSync(join(context, 'node_modules'))).toBe(false);
    }
  });
});

/** Expected: alarm id prefix → what it watches, when it fires. */
const ALARMS: Record<string, { metric: Record<string, unknown>; threshold: number; comparison: string; periods: number }> = {
  AlarmsLakeIteratorAge: { metric: { Namespace: 'AWS/Lambda', MetricName: 'IteratorAge', Statistic: 'Maximum' }, threshold: 600_000, comparison: 'GreaterThanThreshold', periods: 3 },
  AlarmsLakeErrors: { metric: { Namespace: 'AWS/Lambda', MetricName: 'Errors', Statistic: 'Sum' }, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold', periods: 3 },
  AlarmsLakeDeadLetters: { metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Statistic: 'Maximum' }, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold', periods: 1 },
  AlarmsFirehoseFreshness: { metric: { Namespace: 'AWS/Firehose', MetricName: 'DeliveryToS3.DataFreshness', Statistic: 'Maximum' }, threshold: 900, comparison: 'GreaterThanThreshold', periods: 2 },
  AlarmsFirehoseDeliveryFailures: { metric: { Namespace: 'AWS/Firehose', MetricName: 'DeliveryToS3.Success', Statistic: 'Minimum' }, threshold: 1, comparison: 'LessThanThreshold', periods: 3 },
  AlarmsFirehosePartitionsExceeded: { metric: { Namespace: 'AWS/Firehose', MetricName: 'PartitionCountExceeded', Statistic: 'Maximum' }, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold', periods: 1 },
  AlarmsEventsIteratorAge: { metric: { Namespace: 'AWS/Kinesis', MetricName: 'GetRecords.IteratorAgeMilliseconds', Statistic: 'Maximum' }, threshold: 300_000, comparison: 'GreaterThanThreshold', periods: 3 },
  AlarmsEventsWriteThrottles: { metric: { Namespace: 'AWS/Kinesis', MetricName: 'PutRecords.ThrottledRecords', Statistic: 'Sum' }, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold', periods: 3 },
  AlarmsEventsReadThrottles: { metric: { Namespace: 'AWS/Kinesis', MetricName: 'ReadProvisionedThroughputExceeded', Statistic: 'Sum' }, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold', periods: 3 },
  AlarmsFlinkDowntime: { metric: { Expression: 'SELECT MAX(downtime) FROM SCHEMA("AWS/KinesisAnalytics", Application)' }, threshold: 0, comparison: 'GreaterThanThreshold', periods: 5 },
  AlarmsApiElb5xx: { metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_ELB_5XX_Count', Statistic: 'Sum' }, threshold: 10, comparison: 'GreaterThanOrEqualToThreshold', periods: 1 },
  AlarmsApiTarget5xx: { metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_Target_5XX_Count', Statistic: 'Sum' }, threshold: 10, comparison: 'GreaterThanOrEqualToThreshold', periods: 1 },
  AlarmsApiNoHealthyTask: { metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'HealthyHostCount', Statistic: 'Minimum' }, threshold: 1, comparison: 'LessThanThreshold', periods: 3 },
};

describe('the alarms', () => {
  it('watch every failure, each into the SNS topic', () => {
    const topic = logicalIdOf(s.json, 'AWS::SNS::Topic', 'AlarmsTopic');
    const alarms = resourcesOf(s.json, 'AWS::CloudWatch::Alarm');
    expect(alarms.map(([id]) => Object.keys(ALARMS).find((prefix) => id.startsWith(prefix))).sort()).toEqual(Object.keys(ALARMS).sort());
    for (const [id, alarm] of alarms) {
      const expected = ALARMS[Object.keys(ALARMS).find((prefix) => id.startsWith(prefix))!];
      const p = alarm.Properties;
      expect([id, p.Threshold, p.ComparisonOperator, p.EvaluationPeriods]).toEqual([id, expected.threshold, expected.comparison, expected.periods]);
      expect(p.AlarmActions).toEqual([{ Ref: topic }]);
      expect(p.AlarmDescription).toEqual(expect.any(String));
      if ('Expression' in expected.metric) {
        expect(p.Metrics).toEqual([expect.objectContaining({ Expression: expected.metric.Expression, Period: 60, ReturnData: true })]);
      } else {
        expect(p).toMatchObject(expected.metric);
      }
    }
  });

  it('watch the resources of this stack', () => {
    const dims = (prefix: string) => resourcesOf(s.json, 'AWS::CloudWatch::Alarm').find(([id]) => id.startsWith(prefix))![1].Properties.Dimensions;
    expect(dims('AlarmsLakeIteratorAge')).toEqual([{ Name: 'FunctionName', Value: { Ref: logicalIdOf(s.json, 'AWS::Lambda::Function', 'LakeTransformFunction') } }]);
    expect(dims('AlarmsFirehoseFreshness')).toEqual([{ Name: 'DeliveryStreamName', Value: { Ref: logicalIdOf(s.json, 'AWS::KinesisFirehose::DeliveryStream', 'LakeDelivery') } }]);
    expect(dims('AlarmsEventsWriteThrottles')).toEqual([{ Name: 'StreamName', Value: { Ref: logicalIdOf(s.json, 'AWS::Kinesis::Stream', 'StreamsEvents') } }]);
    expect(dims('AlarmsLakeDeadLetters')).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(s.json, 'AWS::SQS::Queue', 'LakeTransformDeadLetters'), 'QueueName'] } }]);
  });

  it('mail the address of the AlarmEmail parameter, when it is given', () => {
    s.template.hasResource('AWS::SNS::Subscription', { Condition: Match.stringLikeRegexp('^AlarmsHasEmail'), Properties: { Protocol: 'email', Endpoint: { Ref: 'AlarmEmail' } } });
    s.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });
});

describe('IAM', () => {
  /** Each role's identity statements, evaluated: [actions, resources]. */
  function statementsOf(rolePrefix: string, managedPolicies: unknown = undefined): [string[], string[], unknown?][] {
    const role = logicalIdOf(s.json, 'AWS::IAM::Role', rolePrefix);
    expect(s.json.Resources[role].Properties.ManagedPolicyArns).toEqual(managedPolicies);
    return resourcesOf(s.json, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .map((st: any) => [asList(st.Action), asList(evaluate(s.json, st.Resource)), st.Condition]);
  }
  const logGroup = (prefix: string) => `${logicalIdOf(s.json, 'AWS::Logs::LogGroup', prefix)}.Arn`;

  it('never grants * actions on * resources, in any policy', () => {
    const documents = policyDocuments(s.json);
    expect(documents.length).toBeGreaterThan(10);
    for (const { where, statements } of documents) {
      for (const st of statements) {
        if (st.Effect !== 'Allow') continue;
        const actions = asList(st.Action ?? []);
        const resources = asList(st.Resource ?? []);
        expect([where, actions.includes('*') && resources.includes('*')]).toEqual([where, false]);
      }
    }
  });

  it('grants no identity a whole service, and * resources only for the two actions that take no resource', () => {
    for (const [id, policy] of resourcesOf(s.json, 'AWS::IAM::Policy')) {
      for (const st of policy.Properties.PolicyDocument.Statement) {
        for (const action of asList(st.Action)) expect([id, action]).toEqual([id, expect.not.stringMatching(/^(\*|[a-z0-9-]+:\*)$/)]);
        if (asList(st.Resource).includes('*')) expect([id, asList(st.Action)]).toEqual([id, expect.arrayContaining([expect.stringMatching(/^(kinesisanalytics:ListApplications|ecr:GetAuthorizationToken)$/)])]);
        if (asList(st.Resource).includes('*')) expect(asList(st.Action)).toHaveLength(1);
      }
    }
  });

  it('lets Firehose write the lake bucket and its own log stream only', () => {
    const bucket = evaluate(s.json, { 'Fn::GetAtt': [logicalIdOf(s.json, 'AWS::S3::Bucket', 'LakeBucket'), 'Arn'] });
    const stream = statementsOf('LakeDeliveryRole');
    expect(stream).toEqual([
      [['s3:AbortMultipartUpload', 's3:GetBucketLocation', 's3:GetObject', 's3:ListBucket', 's3:ListBucketMultipartUploads', 's3:PutObject'], [bucket, `${bucket}/*`], undefined],
      [['logs:PutLogEvents'], [expect.stringMatching(/^arn:aws:logs:us-east-1:123456789012:log-group:LakeDeliveryLogs.*:log-stream:LakeDeliveryLogStream/)], undefined],
    ]);
    s.template.hasResourceProperties('AWS::IAM::Role', { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'firehose.amazonaws.com' }, Condition: { StringEquals: { 'sts:ExternalId': { Ref: 'AWS::AccountId' } } } })] } });
  });

  it('lets the lake transform read the events stream through its consumer, put into Firehose and dead-letter', () => {
    const events = arnOfStream('events');
    expect(statementsOf('LakeTransformRole')).toEqual([
      [['logs:CreateLogStream', 'logs:PutLogEvents'], [logGroup('LakeTransformLogs')], undefined],
      [['firehose:PutRecordBatch'], [`${logicalIdOf(s.json, 'AWS::KinesisFirehose::DeliveryStream', 'LakeDelivery')}.Arn`], undefined],
      [['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], [`${logicalIdOf(s.json, 'AWS::SQS::Queue', 'LakeTransformDeadLetters')}.Arn`], undefined],
      [expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:SubscribeToShard']), [events], undefined],
      [['kinesis:DescribeStreamConsumer', 'kinesis:SubscribeToShard'], [`${logicalIdOf(s.json, 'AWS::Kinesis::StreamConsumer', 'LakeTransformConsumer')}.ConsumerARN`], undefined],
    ]);
    for (const [actions] of statementsOf('LakeTransformRole')) for (const a of actions) expect(a).not.toMatch(/Put(Record|Records)$|^kinesis:(Delete|Create|Update|Increase|Decrease|Merge|Split)/);
  });

  it('gives the Managed Flink role the events stream to read, the results stream to write, the JAR and its log group', () => {
    const code = evaluate(s.json, { 'Fn::GetAtt': [logicalIdOf(s.json, 'AWS::S3::Bucket', 'FlinkCodeBucket'), 'Arn'] });
    expect(statementsOf('FlinkServiceRole')).toEqual([
      [['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'], [arnOfStream('events')], undefined],
      [['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards', 'kinesis:PutRecord', 'kinesis:PutRecords'], [arnOfStream('results')], undefined],
      [['s3:GetObject', 's3:GetObjectVersion'], [`${code}/runner/*`], undefined],
      [['logs:DescribeLogGroups', 'logs:DescribeLogStreams', 'logs:CreateLogStream', 'logs:PutLogEvents'], [logGroup('FlinkLogs')], undefined],
    ]);
    s.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'kinesisanalytics.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } } })] },
    });
  });

  it('gives the control plane its two streams, its own Managed Flink applications, and the Flink role to pass to Managed Flink only', () => {
    expect(statementsOf('ControlPlaneTaskRole')).toEqual([
      [['kinesis:PutRecords', 'kinesis:PutRecord', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards'], [arnOfStream('events')], undefined],
      [['kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards'], [arnOfStream('results')], undefined],
      [MANAGED_FLINK_ACTIONS, [`arn:aws:kinesisanalytics:${REGION}:${ACCOUNT}:application/flagstream-*`], undefined],
      [['kinesisanalytics:ListApplications'], ['*'], undefined],
      [['iam:PassRole'], [roleArn('FlinkServiceRole')], { StringEquals: { 'iam:PassedToService': 'kinesisanalytics.amazonaws.com' } }],
      [['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'], [`${logicalIdOf(s.json, 'AWS::EFS::FileSystem', 'ControlPlaneData')}.Arn`], undefined],
    ]);
    // Every call managed-flink.target.ts makes, and no other.
    const source = readFileSync(join(__dirname, '../../control-plane/src/deployments/managed-flink.target.ts'), 'utf8');
    const calls = [...new Set([...source.matchAll(/new (\w+)Command\(/g)].map((m) => `kinesisanalytics:${m[1]}`))].sort();
    expect([...MANAGED_FLINK_ACTIONS, 'kinesisanalytics:ListApplications'].sort()).toEqual(calls);
  });

  it('lets the task pull its images, read the admin key and log, nothing else', () => {
    expect(statementsOf('ControlPlaneTaskExecutionRole')).toEqual([
      [['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'], [`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/cdk-hnb659fds-container-assets-${ACCOUNT}-${REGION}`], undefined],
      [['ecr:GetAuthorizationToken'], ['*'], undefined],
      [['logs:CreateLogStream', 'logs:PutLogEvents'], [logGroup('ControlPlaneLogs')], undefined],
      [['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [`${logicalIdOf(s.json, 'AWS::SecretsManager::Secret', 'ControlPlaneAdminKey')}-id`], undefined],
    ]);
  });

  it('scopes the roles CDK makes (JAR copy, flow logs) to their buckets and log group', () => {
    const code = evaluate(s.json, { 'Fn::GetAtt': [logicalIdOf(s.json, 'AWS::S3::Bucket', 'FlinkCodeBucket'), 'Arn'] });
    const assets = `arn:aws:s3:::cdk-hnb659fds-assets-${ACCOUNT}-${REGION}`;
    const basic = [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/service-role/AWSLambdaBasicExecutionRole']] }];
    expect(statementsOf('CustomCDKBucketDeployment', basic).map(([, resources]) => resources)).toEqual([[assets, `${assets}/*`], [code, `${code}/*`]]);
    expect(statementsOf('ControlPlaneVpcrejectedIAMRole').map(([, resources]) => resources)).toEqual([[logGroup('ControlPlaneFlowLogs')]]);
  });
});

describe('cdk-nag (AwsSolutions)', () => {
  it('finds nothing that is not acknowledged', () => {
    // cdk-nag 3 reports through CDK's policy validation (a finding fails the synth) rather than annotations.
    const report = new AwsSolutionsChecks(s.app).validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    expect(report.success).toBe(true);
    expect(Annotations.fromStack(s.stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    expect(Annotations.fromStack(s.stack).findError('*', Match.anyValue())).toEqual([]);
  });

  it('acknowledges findings one by one, each with its reason', () => {
    const acknowledged: { path: string; id: string; reason: string }[] = [];
    const visit = (c: IConstruct) => {
      for (const entry of c.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) acknowledged.push({ path: c.node.path, id: id.replace(/^annotation::/i, ''), reason });
      }
      c.node.children.forEach(visit);
    };
    visit(s.app);
    const nag = acknowledged.filter((a) => a.id.startsWith('AwsSolutions-'));
    expect(nag.length).toBeGreaterThan(10);
    for (const a of nag) {
      expect(a.id).toMatch(/^AwsSolutions-[A-Z0-9]+(\[.+\])?$/);
      // Wildcard findings are acknowledged per action or resource, never for a whole rule.
      if (/^AwsSolutions-IAM[45]/.test(a.id)) expect(a.id).toMatch(/\[(Action|Resource|Policy)::.+\]$/);
      expect(a.reason.length).toBeGreaterThan(60);
      // Never on the stack or app as a whole.
      expect(a.path.split('/').length).toBeGreaterThan(1);
    }
  });

  it('would fail the synth on a new finding', () => {
    const bucket = new (require('aws-cdk-lib/aws-s3').Bucket)(s.stack, 'CarelessBucket');
    try {
      const report = new AwsSolutionsChecks(s.app).validateScope(s.app);
      expect(report.violations.map((v) => v.ruleName)).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']));
    } finally {
      s.stack.node.tryRemoveChild(bucket.node.id);
    }
  });
});

describe('the app', () => {
  it('refuses to synthesize without the runner JAR, saying how to build it', () => {
    expect(() => createApp({ runnerJar: '/nonexistent/flagstream-runner.jar', context: { region: REGION } })).toThrow(/node scripts\/bootstrap\.mjs/);
  });
});

describe('with a certificate and prebuilt images (context)', () => {
  let h: Synthesized;
  const certificateArn = `arn:aws:acm:${REGION}:${ACCOUNT}:certificate/00000000-0000-0000-0000-000000000000`;
  beforeAll(() => {
    h = synthesize({ certificateArn, controlPlaneImage: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/flagstream:1`, validatorImage: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/flagstream-validator:1` });
  });
  afterAll(() => h?.cleanup());

  it('serves HTTPS and redirects HTTP to it', () => {
    h.template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 2);
    h.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 443, Protocol: 'HTTPS', Certificates: [{ CertificateArn: certificateArn }] });
    h.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP', DefaultActions: [Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Protocol: 'HTTPS', Port: '443' }) })] });
    expect(evaluate(h.json, h.json.Outputs.ApiUrl.Value)).toMatch(/^https:\/\//);
  });

  it('runs the given images, and builds none', () => {
    const [[, task]] = resourcesOf(h.json, 'AWS::ECS::TaskDefinition');
    expect(task.Properties.ContainerDefinitions.map((c: { Image: string }) => c.Image)).toEqual([`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/flagstream:1`, `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/flagstream-validator:1`]);
    const assets = JSON.parse(readFileSync(join(h.app.outdir, 'Flagstream.assets.json'), 'utf8'));
    expect(Object.keys(assets.dockerImages ?? {})).toEqual([]);
    expect(new AwsSolutionsChecks(h.app).validateScope(h.app).violations).toEqual([]);
  });
});
