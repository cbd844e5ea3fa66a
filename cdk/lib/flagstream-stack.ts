import { CfnMapping, CfnOutput, CfnParameter, Stack, StackProps, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Alarms } from './alarms';
import { logBucket } from './buckets';
import { ControlPlane, ControlPlaneImages } from './control-plane';
import { Flink } from './flink';
import { Lake } from './lake';
import { LakeTransform } from './lake-transform';
import { Streams } from './streams';

export interface FlagstreamStackProps extends StackProps {
  /** The runner JAR to deploy to the code bucket. */
  runnerJar: string;
  images: ControlPlaneImages;
  /** ACM certificate for the load balancer's HTTPS listener; absent: plain HTTP. */
  certificateArn?: string;
  /** The Glue database (default `flagstream`). */
  glueDatabase?: string;
}

/**
 * Flagstream on AWS (CONTRACT §10): the streams, the lake (Lambda → Firehose → S3, Glue), the
 * runner JAR and the Managed Flink service role, the control plane on Fargate behind a load
 * balancer, and the alarms. The Managed Flink applications are the control plane's to create.
 * One deployment per account and region: the control plane names its applications
 * `flagstream-…` and would take another deployment's for its own.
 */
export class FlagstreamStack extends Stack {
  readonly streams: Streams;
  readonly lake: Lake;
  readonly transform: LakeTransform;
  readonly flink: Flink;
  readonly controlPlane: ControlPlane;
  readonly alarms: Alarms;

  constructor(scope: Construct, id: string, props: FlagstreamStackProps) {
    super(scope, id, props);

    const retentionDays = new CfnParameter(this, 'StreamRetentionDays', {
      type: 'Number', default: 1, minValue: 1, maxValue: 7,
      description: 'How many days the events and results streams keep records (replays from the stream reach this far back; older ones read the lake).',
    });
    const eventsShards = new CfnParameter(this, 'EventsStreamShards', {
      type: 'Number', default: 2, minValue: 1, maxValue: 200,
      description: 'Shards of the events stream: each takes 1 MB/s or 1,000 records/s of writes, and 2 MB/s of reads shared by the pool jobs.',
    });
    const resultsShards = new CfnParameter(this, 'ResultsStreamShards', {
      type: 'Number', default: 2, minValue: 1, maxValue: 200,
      description: 'Shards of the results stream (the pool jobs\' result rows).',
    });
    const maxPools = new CfnParameter(this, 'MaxPools', {
      type: 'Number', default: 4, minValue: 1, maxValue: 9,
      description: 'FLAGSTREAM_MAX_POOLS: Managed Flink applications the analyses share (each at least 2 KPU, about $160 a month) and polling readers of the events stream.',
    });
    const desiredCount = new CfnParameter(this, 'ControlPlaneDesiredCount', {
      type: 'Number', default: 1, allowedValues: ['0', '1'],
      description: 'Control plane tasks: 1, or 0 to pause it. Never more: its SQLite store takes one writer.',
    });
    const alarmEmail = new CfnParameter(this, 'AlarmEmail', {
      type: 'String', default: '', allowedPattern: '^$|^[^@\\s]+@[^@\\s]+$',
      description: 'An e-mail address the alarms go to (confirm the subscription mail); empty: subscribe to the AlarmTopic yourself.',
    });
    // CloudFormation cannot multiply: the days map to hours.
    const retention = new CfnMapping(this, 'RetentionHours', {
      mapping: Object.fromEntries([1, 2, 3, 4, 5, 6, 7].map((days) => [String(days), { hours: days * 24 }])),
    });
    const retentionHours = retention.findInMap(retentionDays.valueAsString, 'hours');

    const logs = logBucket(this, 'AccessLogs');
    this.streams = new Streams(this, 'Streams', {
      retentionHours: Token.asNumber(retentionHours),
      eventsShards: eventsShards.valueAsNumber,
      resultsShards: resultsShards.valueAsNumber,
    });
    this.lake = new Lake(this, 'Lake', { logs, databaseName: props.glueDatabase ?? 'flagstream' });
    this.transform = new LakeTransform(this, 'LakeTransform', {
      events: this.streams.events,
      deliveryStreamName: this.lake.deliveryStream.ref,
      deliveryStreamArn: this.lake.deliveryStreamArn,
    });
    this.flink = new Flink(this, 'Flink', { logs, runnerJar: props.runnerJar, events: this.streams.events, results: this.streams.results });
    this.controlPlane = new ControlPlane(this, 'ControlPlane', {
      images: props.images,
      logs,
      events: this.streams.events,
      results: this.streams.results,
      retentionHours,
      flinkRole: this.flink.role,
      codeLocation: this.flink.codeLocation,
      maxPools: maxPools.valueAsString,
      desiredCount: desiredCount.valueAsNumber,
      certificateArn: props.certificateArn,
    });
    this.alarms = new Alarms(this, 'Alarms', {
      email: alarmEmail,
      transform: this.transform.function,
      deadLetters: this.transform.deadLetters,
      deliveryStreamName: this.lake.deliveryStream.ref,
      events: this.streams.events,
      loadBalancer: this.controlPlane.service.loadBalancer,
      targetGroup: this.controlPlane.service.targetGroup,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.controlPlane.url, description: 'The events and analyses API: an SDK\'s eventsUri.' });
    new CfnOutput(this, 'AdminKeySecret', { value: this.controlPlane.adminKey.secretArn, description: 'aws secretsmanager get-secret-value --secret-id <this> --query SecretString --output text' });
    new CfnOutput(this, 'EventsStreamArn', { value: this.streams.events.streamArn });
    new CfnOutput(this, 'ResultsStreamArn', { value: this.streams.results.streamArn });
    new CfnOutput(this, 'RunnerJar', { value: this.flink.codeLocation, description: 'FLAGSTREAM_MANAGED_FLINK_CODE' });
    new CfnOutput(this, 'ManagedFlinkRoleArn', { value: this.flink.role.roleArn });
    new CfnOutput(this, 'LakeBucket', { value: this.lake.bucket.bucketName });
    new CfnOutput(this, 'GlueTable', { value: `${props.glueDatabase ?? 'flagstream'}.events` });
    new CfnOutput(this, 'LakeDeadLetterQueue', { value: this.transform.deadLetters.queueUrl });
    new CfnOutput(this, 'AlarmTopic', { value: this.alarms.topic.topicArn });
  }
}
