import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { Construct } from 'constructs';

export interface StreamsProps {
  /** Retention of both streams in hours (a deploy-time parameter: 24–168). */
  retentionHours: number;
  eventsShards: number;
  resultsShards: number;
}

/**
 * The events stream (the events API writes, the pool jobs and the lake's Lambda read) and the
 * results stream (the pool jobs write, the control plane reads). The CDK app owns them, so the
 * control plane runs with FLAGSTREAM_CREATE_STREAMS=false.
 */
export class Streams extends Construct {
  readonly events: kinesis.Stream;
  readonly results: kinesis.Stream;

  constructor(scope: Construct, id: string, props: StreamsProps) {
    super(scope, id);
    const common = {
      streamMode: kinesis.StreamMode.PROVISIONED,
      retentionPeriod: Duration.hours(props.retentionHours),
      // The AWS managed key (aws/kinesis): encrypted at rest with no key policy to keep, and every
      // reader (pool jobs, the Lambda, the control plane) needs no KMS grant.
      encryption: kinesis.StreamEncryption.MANAGED,
      // Deleted with the stack: a kept stream bills shard-hours and blocks a redeploy under the
      // same name; what the events stream held is in the lake (Firehose flushes within 5 min).
      removalPolicy: RemovalPolicy.DESTROY,
    };
    this.events = new kinesis.Stream(this, 'Events', { ...common, streamName: `${Aws.STACK_NAME}-events`, shardCount: props.eventsShards });
    this.results = new kinesis.Stream(this, 'Results', { ...common, streamName: `${Aws.STACK_NAME}-results`, shardCount: props.resultsShards });
  }
}
