import { Aws, DefaultStackSynthesizer, Fn, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { existsSync } from 'node:fs';
import { dataBucket } from './buckets';
import { acknowledge, nagArn } from './nag';

/** Where the runner JAR goes in the code bucket: `runner/<content hash>.jar`. */
export const RUNNER_PREFIX = 'runner/';

export interface FlinkProps {
  logs: s3.IBucket;
  /** The runner JAR (flink-sql/runner/target/flagstream-runner.jar, built by `node scripts/bootstrap.mjs`). */
  runnerJar: string;
  events: kinesis.IStream;
  results: kinesis.IStream;
}

/**
 * What the Managed Flink applications the control plane creates need: the runner JAR in a
 * versioned code bucket, and their service execution role. The applications themselves are
 * the control plane's (one per pool generation, `flagstream-pool-…`), not the stack's.
 */
export class Flink extends Construct {
  readonly codeBucket: s3.Bucket;
  /** `s3://bucket/runner/<hash>.jar`: FLAGSTREAM_MANAGED_FLINK_CODE. */
  readonly codeLocation: string;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: FlinkProps) {
    super(scope, id);
    if (!existsSync(props.runnerJar)) {
      throw new Error(`the runner JAR ${props.runnerJar} is missing: build it with \`node scripts/bootstrap.mjs\` (needs Java 17 and Maven), or run \`npm run synth\`, which does`);
    }
    // Versioned: an application keeps the key it was created with, and its code must stay there.
    this.codeBucket = dataBucket(this, 'CodeBucket', { logs: props.logs, logPrefix: 'code/', versioned: true });

    // The JAR is copied as is (extract: false) to a key named by its content hash: a new JAR is a
    // new FLAGSTREAM_MANAGED_FLINK_CODE, and the control plane updates applications to it.
    const deployment = new s3deploy.BucketDeployment(this, 'Runner', {
      sources: [s3deploy.Source.asset(props.runnerJar)],
      destinationBucket: this.codeBucket,
      destinationKeyPrefix: RUNNER_PREFIX,
      extract: false,
      // Older JARs stay: a stopped application restores with the code it ran.
      prune: false,
      retainOnDelete: true,
      // The JAR is ~66 MB: downloaded, then uploaded again by the deployment's Lambda.
      memoryLimit: 1024,
      ephemeralStorageSize: Size.mebibytes(1024),
    });
    const key = `${RUNNER_PREFIX}${Fn.select(0, deployment.objectKeys)}`;
    this.codeLocation = `s3://${deployment.deployedBucket.bucketName}/${key}`;
    this.acknowledgeDeploymentFindings();

    this.logGroup = new logs.LogGroup(this, 'Logs', { logGroupName: `/aws/kinesis-analytics/${Aws.STACK_NAME}`, retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });

    this.role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('kinesisanalytics.amazonaws.com', {
        // Only applications of this account may use it (confused deputy).
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'Service execution role of the Flagstream Managed Flink applications.',
    });
    // The runner's Kinesis source (the connector's polling FlinkKinesisConsumer).
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadEvents',
      actions: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'],
      resources: [props.events.streamArn],
    }));
    // The results sink (KinesisStreamsSink).
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteResults',
      actions: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards', 'kinesis:PutRecord', 'kinesis:PutRecords'],
      resources: [props.results.streamArn],
    }));
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadCode',
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [this.codeBucket.arnForObjects(`${RUNNER_PREFIX}*`)],
    }));
    this.role.addToPolicy(new iam.PolicyStatement({
      sid: 'Logs',
      actions: ['logs:DescribeLogGroups', 'logs:DescribeLogStreams', 'logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [this.logGroup.logGroupArn],
    }));
    acknowledge(this.role, {
      id: `AwsSolutions-IAM5[Resource::${nagArn(this.codeBucket)}/${RUNNER_PREFIX}*]`,
      reason: 'The JAR\'s key carries its content hash (a new build is a new key) and Managed Flink writes one log stream per application: the role reads only runner/ objects of the code bucket and writes only this log group.',
    });
  }

  /** BucketDeployment's own Lambda (one per stack, made by CDK) copies the JAR; these are its findings. */
  private acknowledgeDeploymentFindings(): void {
    const stack = Stack.of(this);
    const handler = stack.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
    if (!handler) throw new Error('cannot find the BucketDeployment\'s handler to acknowledge its cdk-nag findings');
    const qualifier = (stack.node.tryGetContext('@aws-cdk/core:bootstrapQualifier') as string | undefined) ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER;
    const why = 'CDK\'s BucketDeployment handler copies the runner JAR from the CDK asset bucket into the code bucket at deploy time';
    acknowledge(handler,
      { id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', reason: `${why}; CDK gives its function the basic execution role (its own log streams only).` },
      ...['s3:GetObject*', 's3:GetBucket*', 's3:List*', 's3:DeleteObject*', 's3:Abort*'].map((action) => ({
        id: `AwsSolutions-IAM5[Action::${action}]`,
        reason: `${why}: CDK grants it read on the asset bucket and read/write on the code bucket, no other bucket.`,
      })),
      { id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-${qualifier}-assets-<AWS::AccountId>-${stack.region}/*]`, reason: `${why}: it reads the staged JAR from the CDK asset bucket, whose keys are content hashes.` },
      { id: `AwsSolutions-IAM5[Resource::${nagArn(this.codeBucket)}/*]`, reason: `${why}: it writes the JAR under runner/ of the code bucket.` },
      { id: 'AwsSolutions-L1', reason: `${why}; CDK pins its Python runtime to the one its AWS CLI layer is built for.` },
    );
  }
}
