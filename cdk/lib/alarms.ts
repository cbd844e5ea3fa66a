import { CfnCondition, CfnParameter, Duration, Fn, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface AlarmsProps {
  /** An e-mail address to subscribe to the topic; '' subscribes none. */
  email: CfnParameter;
  transform: lambda.IFunction;
  deadLetters: sqs.IQueue;
  deliveryStreamName: string;
  events: kinesis.Stream;
  loadBalancer: elbv2.ApplicationLoadBalancer;
  targetGroup: elbv2.ApplicationTargetGroup;
}

/**
 * One SNS topic, and an alarm for each way the pipeline fails: the lake falls behind or loses
 * batches, Firehose cannot deliver, the stream throttles or its readers lag, a Flink job is
 * down, the API fails.
 */
export class Alarms extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    // A key of our own: CloudWatch cannot publish to a topic encrypted with the AWS managed aws/sns key.
    const key = new kms.Key(this, 'TopicKey', { enableKeyRotation: true, description: 'Encrypts the Flagstream alarm topic.', removalPolicy: RemovalPolicy.DESTROY });
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'Flagstream alarms', masterKey: key, enforceSSL: true });

    const hasEmail = new CfnCondition(this, 'HasEmail', { expression: Fn.conditionNot(Fn.conditionEquals(props.email.valueAsString, '')) });
    const subscription = new sns.CfnSubscription(this, 'EmailSubscription', { topicArn: this.topic.topicArn, protocol: 'email', endpoint: props.email.valueAsString });
    subscription.cfnOptions.condition = hasEmail;

    const minutes = (n: number) => Duration.minutes(n);
    const firehose = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({ namespace: 'AWS/Firehose', metricName, dimensionsMap: { DeliveryStreamName: props.deliveryStreamName }, statistic, period: minutes(5) });

    this.add('LakeIteratorAge', 'The lake transform is more than 10 min behind the events stream (records older than 6 h go to its DLQ).', {
      metric: props.transform.metric('IteratorAge', { statistic: 'Maximum', period: minutes(5) }),
      threshold: 10 * 60_000, evaluationPeriods: 3,
    });
    this.add('LakeErrors', 'The lake transform keeps failing (Firehose refuses records); its batches are retried, bisected, then dead-lettered.', {
      metric: props.transform.metricErrors({ period: minutes(5), statistic: 'Sum' }),
      threshold: 1, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.add('LakeDeadLetters', 'Batches of events the lake transform gave up on: replay them from the stream (shard and sequence numbers in the messages) within its retention.', {
      metric: props.deadLetters.metricApproximateNumberOfMessagesVisible({ period: minutes(5), statistic: 'Maximum' }),
      threshold: 1, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.add('FirehoseFreshness', 'Firehose holds records older than 15 min: the lake is not being written (buffers close every 5 min).', {
      metric: firehose('DeliveryToS3.DataFreshness', 'Maximum'),
      threshold: 15 * 60, evaluationPeriods: 2,
    });
    this.add('FirehoseDeliveryFailures', 'Firehose\'s puts to the lake bucket fail.', {
      metric: firehose('DeliveryToS3.Success', 'Minimum'),
      threshold: 1, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    this.add('FirehosePartitionsExceeded', 'More tenant-hours at once than Firehose\'s active partitions allow (500): their records go to errors/.', {
      metric: firehose('PartitionCountExceeded', 'Maximum'),
      threshold: 1, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.add('EventsIteratorAge', 'The pool jobs read the events stream more than 5 min behind: results are late.', {
      metric: props.events.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: minutes(5) }),
      threshold: 5 * 60_000, evaluationPeriods: 3,
    });
    this.add('EventsWriteThrottles', 'The events stream throttles the events API\'s writes for 15 min: add shards (EventsStreamShards).', {
      metric: props.events.metricPutRecordsThrottledRecords({ statistic: 'Sum', period: minutes(5) }),
      threshold: 1, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.add('EventsReadThrottles', 'The pool jobs\' reads are throttled for 15 min: fewer pools (MaxPools) or more shards.', {
      metric: props.events.metricReadProvisionedThroughputExceeded({ statistic: 'Sum', period: minutes(5) }),
      threshold: 1, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    // The applications come and go with every pool generation, so no fixed dimension names them:
    // a Metrics Insights query takes the worst of every Managed Flink application in the region
    // (the control plane's are all named flagstream-pool-…; share the account with other
    // applications and they count too).
    this.add('FlinkDowntime', 'A Managed Flink application has been down (failing, restarting) for 5 min.', {
      metric: new cloudwatch.MathExpression({
        expression: 'SELECT MAX(downtime) FROM SCHEMA("AWS/KinesisAnalytics", Application)',
        period: minutes(1),
        label: 'downtime (ms), worst application',
      }),
      threshold: 0, evaluationPeriods: 5,
    });
    this.add('ApiElb5xx', 'The load balancer answers 5xx itself (no healthy control plane, timeouts).', {
      metric: props.loadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: minutes(5), statistic: 'Sum' }),
      threshold: 10, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.add('ApiTarget5xx', 'The control plane answers 5xx (e.g. 503 while the stream stalls).', {
      metric: props.loadBalancer.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period: minutes(5), statistic: 'Sum' }),
      threshold: 10, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.add('ApiNoHealthyTask', 'No control plane task answers the load balancer (with ControlPlaneDesiredCount 0 this is expected).', {
      metric: props.targetGroup.metrics.healthyHostCount({ period: minutes(1), statistic: 'Minimum' }),
      threshold: 1, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
  }

  private add(id: string, description: string, props: Omit<cloudwatch.CreateAlarmOptions, 'alarmDescription'> & { metric: cloudwatch.IMetric }): void {
    const { metric, ...options } = props;
    const created = new cloudwatch.Alarm(this, id, {
      metric,
      alarmDescription: description,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      // No traffic is no failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...options,
    });
    created.addAlarmAction(new actions.SnsAction(this.topic));
    this.alarms.push(created);
  }
}
