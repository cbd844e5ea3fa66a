import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KinesisConsumerEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { acknowledge } from './nag';
import { REPO_ROOT } from './paths';

/** The event source mapping's settings (tested; README "Deploy to AWS"). */
export const EVENT_SOURCE = {
  batchSize: 1000,
  maxBatchingWindow: Duration.seconds(5),
  retryAttempts: 5,
  // Well inside the streams' shortest retention (24 h): a batch given up on is still in the
  // stream for a day, so the DLQ's shard and sequence numbers can be read again.
  maxRecordAge: Duration.hours(6),
};

export interface LakeTransformProps {
  events: kinesis.IStream;
  deliveryStreamName: string;
  deliveryStreamArn: string;
}

/**
 * The Lambda between the events stream and Firehose (cdk/lambda/lake-transform.ts), its event
 * source mapping and the DLQ for batches it gives up on.
 */
export class LakeTransform extends Construct {
  readonly function: NodejsFunction;
  readonly deadLetters: sqs.Queue;
  readonly consumer: kinesis.StreamConsumer;
  readonly eventSource: KinesisConsumerEventSource;

  constructor(scope: Construct, id: string, props: LakeTransformProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    // Its own role: logs to its own group only (no AWSLambdaBasicExecutionRole on every group).
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: 'The lake transform: events stream to Firehose.' });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['firehose:PutRecordBatch'], resources: [props.deliveryStreamArn] }));

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(REPO_ROOT, 'cdk', 'lambda', 'lake-transform.ts'),
      handler: 'handler',
      // The newest Node.js runtime (≥ 20): it ships the AWS SDK v3 the handler loads Firehose's client from.
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      // Four PutRecordBatch attempts per call with backoff, a few calls per batch.
      timeout: Duration.minutes(1),
      role,
      logGroup,
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      environment: { DELIVERY_STREAM_NAME: props.deliveryStreamName },
      bundling: {
        // Bundled by the esbuild in node_modules; never by Docker (synth runs without it).
        forceDockerBundling: false,
        target: 'node20',
        sourceMap: true,
        externalModules: ['@aws-sdk/*'],
      },
      description: 'Flagstream: every event of the events stream, through toLakeRecords, into Firehose (the data lake).',
    });

    this.deadLetters = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetters, { id: 'AwsSolutions-SQS3', reason: 'This queue is itself the dead-letter destination of the lake transform\'s event source mapping: it holds shard and sequence numbers for a person to replay, with nowhere further to send them.' });

    // An enhanced fan-out consumer: polling readers share 5 GetRecords a second per shard, a
    // budget the pool jobs already use (README "Readers and costs"); this one gets its own pipe.
    this.consumer = new kinesis.StreamConsumer(this, 'Consumer', { stream: props.events, streamConsumerName: `${Aws.STACK_NAME}-lake` });
    this.eventSource = new KinesisConsumerEventSource(this.consumer, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: EVENT_SOURCE.batchSize,
      maxBatchingWindow: EVENT_SOURCE.maxBatchingWindow,
      // A failing batch is halved until the record Firehose refuses is alone; only that one goes to the DLQ.
      bisectBatchOnError: true,
      retryAttempts: EVENT_SOURCE.retryAttempts,
      maxRecordAge: EVENT_SOURCE.maxRecordAge,
      onFailure: new SqsDlq(this.deadLetters),
      // The handler throws on failure (no partial batch responses): bisect-on-error applies.
      reportBatchItemFailures: false,
    });
    this.function.addEventSource(this.eventSource);
  }
}
