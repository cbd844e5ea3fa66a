import { Aws, Duration, IgnoreMode, RemovalPolicy } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from './nag';
import { REPO_ROOT } from './paths';

/** The control plane's port, and the validator's (the two containers share the task's network namespace). */
const PORT = 8080;
const VALIDATOR_PORT = 8082;
const DATA_DIR = '/data';

/** The Managed Flink calls the control plane makes (control-plane/src/deployments/managed-flink.target.ts), on its applications. */
export const MANAGED_FLINK_ACTIONS = [
  'kinesisanalytics:CreateApplication',
  'kinesisanalytics:DescribeApplication',
  'kinesisanalytics:UpdateApplication',
  'kinesisanalytics:StartApplication',
  'kinesisanalytics:StopApplication',
  'kinesisanalytics:DeleteApplication',
  'kinesisanalytics:ListApplicationSnapshots',
  'kinesisanalytics:DescribeApplicationOperation',
  'kinesisanalytics:ListApplicationOperations',
];

/**
 * The build context is the repository root, but the image needs only the sources below (the
 * Dockerfile builds the rest): the allow-list keeps the asset small and its hash stable when
 * node_modules, build output, the data dir or cdk.out change.
 */
export const IMAGE_CONTEXT_EXCLUDE = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!tsconfig.base.json',
  '!schemas',
  '!control-plane',
  '!flink-sql',
  '!cdk/package.json',
  '!cdk/control-plane.Dockerfile',
  '!test/package.json',
  '**/node_modules',
  '**/dist',
  '**/target',
  '**/*.tsbuildinfo',
  '**/*.spec.ts',
  'control-plane/src/standin',
  'flink-sql/**/src/test',
];

export interface ControlPlaneImages {
  controlPlane: ecs.ContainerImage;
  validator: ecs.ContainerImage;
}

/** Both images from cdk/control-plane.Dockerfile (built by `cdk deploy`, never by synth), or prebuilt ones. */
export function controlPlaneImages(prebuilt?: { controlPlane?: string; validator?: string }): ControlPlaneImages {
  const fromDockerfile = (target: string) =>
    ecs.ContainerImage.fromAsset(REPO_ROOT, {
      file: 'cdk/control-plane.Dockerfile',
      target,
      exclude: IMAGE_CONTEXT_EXCLUDE,
      ignoreMode: IgnoreMode.DOCKER,
      platform: Platform.LINUX_AMD64,
    });
  return {
    controlPlane: prebuilt?.controlPlane ? ecs.ContainerImage.fromRegistry(prebuilt.controlPlane) : fromDockerfile('control-plane'),
    validator: prebuilt?.validator ? ecs.ContainerImage.fromRegistry(prebuilt.validator) : fromDockerfile('validator'),
  };
}

export interface ControlPlaneProps {
  images: ControlPlaneImages;
  logs: s3.IBucket;
  events: kinesis.IStream;
  results: kinesis.IStream;
  /** The streams' retention in hours (a token from the retention parameter). */
  retentionHours: string;
  flinkRole: iam.IRole;
  /** `s3://bucket/key` of the runner JAR. */
  codeLocation: string;
  /** FLAGSTREAM_MAX_POOLS (a token from its parameter). */
  maxPools: string;
  /** 0 or 1 (a token from its parameter). */
  desiredCount: number;
  /** An ACM certificate for HTTPS; without it the load balancer listens on plain HTTP (port 80). */
  certificateArn?: string;
}

/**
 * The control plane on ECS Fargate behind an Application Load Balancer: the NestJS app and the
 * SQL validator (a JVM with Flink's planner) as two containers of one task, its SQLite store
 * on EFS, the admin key from Secrets Manager.
 */
export class ControlPlane extends Construct {
  readonly vpc: ec2.Vpc;
  readonly service: ecsPatterns.ApplicationLoadBalancedFargateService;
  readonly taskRole: iam.Role;
  readonly adminKey: secretsmanager.Secret;
  readonly fileSystem: efs.FileSystem;
  readonly container: ecs.ContainerDefinition;
  readonly url: string;

  constructor(scope: Construct, id: string, props: ControlPlaneProps) {
    super(scope, id);

    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      // One NAT gateway: the task reaches ECR, Secrets Manager, CloudWatch and the Managed Flink API through it.
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
      // Rejected traffic only: enough to see what the security groups turn away, at little cost.
      flowLogs: { rejected: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    // Every event goes to Kinesis: through an interface endpoint it costs less than NAT processing.
    this.vpc.addInterfaceEndpoint('Kinesis', { service: ec2.InterfaceVpcEndpointAwsService.KINESIS_STREAMS, privateDnsEnabled: true });
    // Image layers come from S3: free through a gateway endpoint.
    this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });

    const cluster = new ecs.Cluster(this, 'Cluster', { vpc: this.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });

    // The store (SQLite), its ledger and raises live in the data dir: on EFS they outlive the task.
    // One task at a time writes it (desired count 0 or 1, no overlap on deploy): SQLite's locks
    // and its WAL want one writer on one host.
    this.fileSystem = new efs.FileSystem(this, 'Data', {
      vpc: this.vpc,
      encrypted: true,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      throughputMode: efs.ThroughputMode.ELASTIC,
      enableAutomaticBackups: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const accessPoint = this.fileSystem.addAccessPoint('DataAccess', {
      path: '/flagstream',
      // The image's `node` user.
      posixUser: { uid: '1000', gid: '1000' },
      createAcl: { ownerUid: '1000', ownerGid: '1000', permissions: '750' },
    });

    this.adminKey = new secretsmanager.Secret(this, 'AdminKey', {
      description: 'FLAGSTREAM_ADMIN_KEY: the Flagstream control plane\'s admin key (Authorization: Bearer <key>).',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    acknowledge(this.adminKey, { id: 'AwsSolutions-SMG4', reason: 'The admin key is a bearer key operators hold; the control plane reads it once at start. Rotating it means handing the new key out and restarting the task, a deliberate step (put-secret-value, then force a new deployment), not a scheduled Lambda.' });

    this.taskRole = new iam.Role(this, 'TaskRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'), description: 'The Flagstream control plane.' });
    // The events API writes events and heartbeats; the health check reads the stream's summary and shards.
    this.taskRole.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteEvents',
      actions: ['kinesis:PutRecords', 'kinesis:PutRecord', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards'],
      resources: [props.events.streamArn],
    }));
    // The results ingestor reads every shard of the results stream.
    this.taskRole.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadResults',
      actions: ['kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:DescribeStreamSummary', 'kinesis:ListShards'],
      resources: [props.results.streamArn],
    }));
    // The control plane's applications only: their names all start with `flagstream-` (JOB_NAME_PREFIX).
    this.taskRole.addToPolicy(new iam.PolicyStatement({
      sid: 'ManageFlinkApplications',
      actions: MANAGED_FLINK_ACTIONS,
      resources: [`arn:${Aws.PARTITION}:kinesisanalytics:${Aws.REGION}:${Aws.ACCOUNT_ID}:application/flagstream-*`],
    }));
    // ListApplications takes no resource (the IAM reference lists none for it); the health check pages through it.
    this.taskRole.addToPolicy(new iam.PolicyStatement({ sid: 'ListFlinkApplications', actions: ['kinesisanalytics:ListApplications'], resources: ['*'] }));
    // CreateApplication passes the service role: that role only, and only to Managed Flink.
    this.taskRole.addToPolicy(new iam.PolicyStatement({
      sid: 'PassFlinkRole',
      actions: ['iam:PassRole'],
      resources: [props.flinkRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'kinesisanalytics.amazonaws.com' } },
    }));
    this.fileSystem.grant(this.taskRole, 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite');

    const taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: 1024,
      // Node (~1 GB at most) and the validator's JVM (1 GB heap, planner classes) side by side.
      memoryLimitMiB: 3072,
      taskRole: this.taskRole,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      volumes: [{
        name: 'data',
        efsVolumeConfiguration: {
          fileSystemId: this.fileSystem.fileSystemId,
          transitEncryption: 'ENABLED',
          authorizationConfig: { accessPointId: accessPoint.accessPointId, iam: 'ENABLED' },
        },
      }],
    });
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });

    // First container: the load balancer's target.
    this.container = taskDefinition.addContainer('control-plane', {
      image: props.images.controlPlane,
      essential: true,
      portMappings: [{ containerPort: PORT }],
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'control-plane' }),
      memoryReservationMiB: 1024,
      environment: {
        HOST: '0.0.0.0',
        PORT: String(PORT),
        FLAGSTREAM_TARGET: 'managed-flink',
        AWS_REGION: Aws.REGION,
        FLAGSTREAM_EVENTS_STREAM: props.events.streamName,
        FLAGSTREAM_RESULTS_STREAM: props.results.streamName,
        FLAGSTREAM_EVENTS_STREAM_ARN: props.events.streamArn,
        FLAGSTREAM_RESULTS_STREAM_ARN: props.results.streamArn,
        FLAGSTREAM_MANAGED_FLINK_ROLE_ARN: props.flinkRole.roleArn,
        FLAGSTREAM_MANAGED_FLINK_CODE: props.codeLocation,
        // The stack owns the streams (and their retention).
        FLAGSTREAM_CREATE_STREAMS: 'false',
        FLAGSTREAM_STREAM_RETENTION_HOURS: props.retentionHours,
        FLAGSTREAM_MAX_POOLS: props.maxPools,
        FLAGSTREAM_DATA_DIR: DATA_DIR,
        // On AWS the lake is the Lambda → Firehose branch (lake.ts); the local writer would be a second reader and a second lake.
        FLAGSTREAM_LAKE: 'off',
        FLAGSTREAM_VALIDATOR_URL: `http://127.0.0.1:${VALIDATOR_PORT}`,
        NODE_NO_WARNINGS: '1',
      },
      secrets: { FLAGSTREAM_ADMIN_KEY: ecs.Secret.fromSecretsManager(this.adminKey) },
    });
    this.container.addMountPoints({ containerPath: DATA_DIR, sourceVolume: 'data', readOnly: false });

    // The warm SQL validator (flink-sql/local-cluster --no-cluster): it binds 127.0.0.1, which the
    // task's containers share, so it is reachable from the control plane only.
    const validator = taskDefinition.addContainer('sql-validator', {
      image: props.images.validator,
      essential: true,
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'sql-validator' }),
      memoryReservationMiB: 1536,
      command: ['--no-cluster', '--validator-port', String(VALIDATOR_PORT), '--runner-jar', '/app/flagstream-runner.jar', '--data-dir', '/tmp/flink'],
      environment: { JAVA_TOOL_OPTIONS: '-Xmx1g' },
    });
    this.container.addContainerDependencies({ container: validator, condition: ecs.ContainerDependencyCondition.START });

    const https = props.certificateArn !== undefined;
    this.service = new ecsPatterns.ApplicationLoadBalancedFargateService(this, 'Service', {
      cluster,
      taskDefinition,
      publicLoadBalancer: true,
      taskSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      ...(https
        ? { protocol: elbv2.ApplicationProtocol.HTTPS, certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn!), redirectHTTP: true, sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS }
        : { protocol: elbv2.ApplicationProtocol.HTTP }),
      // Never two tasks on the one SQLite store: the old task stops before the new one starts.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { rollback: true },
      // The validator's JVM warms its planner for ~30 s; the first health checks may find it cold.
      healthCheckGracePeriod: Duration.minutes(3),
      // SDKs send payloads of up to 16 MiB (FLAGSTREAM_MAX_BODY_BYTES).
      idleTimeout: Duration.seconds(120),
    });
    // The parameter's 0 or 1 (the pattern takes only a literal).
    (this.service.service.node.defaultChild as ecs.CfnService).desiredCount = props.desiredCount;
    this.service.targetGroup.configureHealthCheck({
      path: '/health',
      // /health answers 503 while a dependency (stream, Managed Flink API, validator, store) is
      // down; restarting the control plane mends none of them. The load balancer only checks that
      // it answers; the alarms report the rest.
      healthyHttpCodes: '200,503',
      interval: Duration.seconds(30),
      unhealthyThresholdCount: 3,
    });
    this.service.targetGroup.setAttribute('deregistration_delay.timeout_seconds', '30');

    this.fileSystem.connections.allowDefaultPortFrom(this.service.service, 'the control plane mounts its data dir');
    this.service.loadBalancer.logAccessLogs(props.logs, 'alb');
    this.url = `${https ? 'https' : 'http'}://${this.service.loadBalancer.loadBalancerDnsName}`;

    this.acknowledgeFindings(https);
  }

  /** The cdk-nag findings this design accepts, each with its reason. */
  private acknowledgeFindings(https: boolean): void {
    acknowledge(this.service.loadBalancer, {
      id: 'AwsSolutions-EC23',
      reason: `The events API is public: LaunchDarkly SDKs anywhere send their events to it (${https ? 'HTTPS' : 'HTTP; pass -c certificateArn=… for HTTPS'}); every request still needs an SDK, tenant or admin key. (cdk-nag cannot resolve the group's VPC-CIDR egress rule and reports that as this rule too.)`,
    });
    acknowledge(this.vpc.node.findChild('Kinesis'), {
      id: 'AwsSolutions-EC23',
      reason: 'The Kinesis endpoint\'s security group admits HTTPS from this VPC\'s CIDR only; cdk-nag cannot resolve the CIDR (a GetAtt) and reports the rule as unverifiable.',
    });
    acknowledge(this.service.taskDefinition, {
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds stream names and ARNs, the role ARN, the code location and tuning values, nothing secret; the one secret, the admin key, comes from Secrets Manager.',
    });
    acknowledge(this.taskRole,
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kinesisanalytics:<AWS::Region>:<AWS::AccountId>:application/flagstream-*]',
        reason: 'The control plane creates and deletes its Managed Flink applications at run time (flagstream-pool-<pool>-g<generation>): it can name only their prefix, and only its own calls on them.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'kinesisanalytics:ListApplications (the health check\'s one call per pass) supports no resource-level permissions; it is the only action of that statement.',
      },
    );
    // The execution role that CDK makes for pulling the image, reading the secret and logging.
    acknowledge(this.service.taskDefinition.obtainExecutionRole(), {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken (to pull the control plane\'s images) supports no resource-level permissions; every other grant of the execution role names its repository, log group or secret.',
    });
  }
}
