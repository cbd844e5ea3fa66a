import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { dataBucket } from './buckets';
import { acknowledge, nagArn } from './nag';

/** Where the events lie in the lake bucket: `events/tenant=…/dt=…/hour=…/` (partitionPath in lake-record.ts). */
export const LAKE_PREFIX = 'events/';

/**
 * Firehose's partition keys, computed as `toLakeRecord` (control-plane/src/lake/lake-record.ts)
 * computes them: the tenant, and the UTC date and hour of `receivedAt` (ms since the epoch).
 * `floor`: whole seconds, as toISOString truncates.
 */
export const PARTITION_QUERY =
  '{tenant: .tenant, dt: (.receivedAt / 1000 | floor | strftime("%Y-%m-%d")), hour: (.receivedAt / 1000 | floor | strftime("%H"))}';

export const PARTITION_PREFIX =
  `${LAKE_PREFIX}tenant=!{partitionKeyFromQuery:tenant}/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/`;

/** The columns of a lake line (EventRecord in control-plane/src/events/event-record.ts) that SQL reads most; `tenant` is the partition key. */
const COLUMNS: glue.CfnTable.ColumnProperty[] = [
  { name: 'environment', type: 'string' },
  { name: 'payloadid', type: 'string' },
  { name: 'eventindex', type: 'bigint' },
  { name: 'receivedat', type: 'bigint', comment: 'when the events API received the payload (ms)' },
  { name: 'sdktime', type: 'bigint' },
  { name: 'eventtime', type: 'bigint', comment: 'the time the event counts at (ms)' },
  { name: 'late', type: 'boolean' },
  { name: 'kind', type: 'string' },
  { name: 'key', type: 'string' },
  { name: 'version', type: 'bigint' },
  { name: 'variation', type: 'bigint' },
  { name: 'value', type: 'string', comment: 'JSON text' },
  { name: 'default', type: 'string', comment: 'JSON text' },
  { name: 'reason', type: 'string', comment: 'JSON text' },
  { name: 'context', type: 'string', comment: 'JSON text' },
  { name: 'contextkeys', type: 'map<string,string>' },
  { name: 'contextkey', type: 'string' },
  { name: 'creationdate', type: 'bigint' },
  { name: 'startdate', type: 'bigint' },
  { name: 'enddate', type: 'bigint' },
  { name: 'features', type: 'string', comment: 'a summary event\'s counters, JSON text' },
  { name: 'data', type: 'string', comment: 'JSON text' },
  { name: 'metricvalue', type: 'double' },
];

export interface LakeProps {
  logs: s3.IBucket;
  /** The Glue database's name (one per account and region). */
  databaseName: string;
}

/** The lake bucket, the Firehose stream that fills it, and the Glue table Athena reads it with. */
export class Lake extends Construct {
  readonly bucket: s3.Bucket;
  readonly deliveryStream: firehose.CfnDeliveryStream;
  readonly deliveryStreamName: string;
  readonly deliveryStreamArn: string;
  readonly database: glue.CfnDatabase;
  readonly table: glue.CfnTable;

  constructor(scope: Construct, id: string, props: LakeProps) {
    super(scope, id);
    this.bucket = dataBucket(this, 'Bucket', { logs: props.logs, logPrefix: 'lake/' });

    const logGroup = new logs.LogGroup(this, 'DeliveryLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    const logStream = new logs.LogStream(this, 'DeliveryLogStream', { logGroup, logStreamName: 'DestinationDelivery', removalPolicy: RemovalPolicy.DESTROY });

    const role = new iam.Role(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', { conditions: { StringEquals: { 'sts:ExternalId': Aws.ACCOUNT_ID } } }),
      description: 'Firehose writes the lake bucket and its error log.',
    });
    // What Firehose's S3 destination needs, and no more (no delete, no other bucket).
    role.addToPolicy(new iam.PolicyStatement({
      actions: ['s3:AbortMultipartUpload', 's3:GetBucketLocation', 's3:GetObject', 's3:ListBucket', 's3:ListBucketMultipartUploads', 's3:PutObject'],
      resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      actions: ['logs:PutLogEvents'],
      resources: [`arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:${logGroup.logGroupName}:log-stream:${logStream.logStreamName}`],
    }));
    acknowledge(role, {
      id: `AwsSolutions-IAM5[Resource::${nagArn(this.bucket)}/*]`,
      reason: 'Firehose writes objects under keys it makes up per partition (tenant, date, hour) and per file; only this bucket\'s objects.',
    });

    this.deliveryStreamName = `${Aws.STACK_NAME}-lake`;
    this.deliveryStream = new firehose.CfnDeliveryStream(this, 'Delivery', {
      deliveryStreamName: this.deliveryStreamName,
      // The Lambda puts the records (PutRecordBatch): a Kinesis-sourced stream could not run the one shared transform.
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'AWS_OWNED_CMK' },
      extendedS3DestinationConfiguration: {
        bucketArn: this.bucket.bucketArn,
        roleArn: role.roleArn,
        prefix: PARTITION_PREFIX,
        errorOutputPrefix: 'errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/',
        // Dynamic partitioning takes at least 64 MiB; big files read fastest. A partition's file
        // closes after 5 min at most, so the lake is minutes behind the stream, which keeps a day.
        bufferingHints: { intervalInSeconds: 300, sizeInMBs: 128 },
        // GZIP JSON lines: Athena (and the replay's lake reader) reads gzip JSON lines natively,
        // one line per event, with no schema lock-in: events carry arbitrary nested SDK fields
        // (contexts, values, summaries) that a columnar schema would have to fix up front.
        compressionFormat: 'GZIP',
        fileExtension: '.json.gz',
        dynamicPartitioningConfiguration: { enabled: true, retryOptions: { durationInSeconds: 300 } },
        processingConfiguration: {
          enabled: true,
          processors: [
            // The Lambda packs up to 500 JSON lines into one record (Firehose bills records rounded up to 5 KB): split them first.
            { type: 'RecordDeAggregation', parameters: [{ parameterName: 'SubRecordType', parameterValue: 'JSON' }] },
            { type: 'MetadataExtraction', parameters: [
              { parameterName: 'MetadataExtractionQuery', parameterValue: PARTITION_QUERY },
              { parameterName: 'JsonParsingEngine', parameterValue: 'JQ-1.6' },
            ] },
            // One event per line in the files (the default delimiter is a newline).
            { type: 'AppendDelimiterToRecord' },
          ],
        },
        cloudWatchLoggingOptions: { enabled: true, logGroupName: logGroup.logGroupName, logStreamName: logStream.logStreamName },
      },
    });
    this.deliveryStream.node.addDependency(role);
    this.deliveryStreamArn = this.deliveryStream.attrArn;

    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: { name: props.databaseName, description: 'Flagstream\'s data lake: every accepted event.' },
    });
    const root = `s3://${this.bucket.bucketName}/${LAKE_PREFIX}`;
    this.table = new glue.CfnTable(this, 'EventsTable', {
      catalogId: Aws.ACCOUNT_ID,
      databaseName: props.databaseName,
      tableInput: {
        name: 'events',
        description: 'One row per accepted event; query with a tenant (WHERE tenant = \'…\'): its partitions are injected, not listed.',
        tableType: 'EXTERNAL_TABLE',
        partitionKeys: [
          { name: 'tenant', type: 'string' },
          { name: 'dt', type: 'string', comment: 'UTC date of receivedAt, yyyy-MM-dd' },
          { name: 'hour', type: 'int', comment: 'UTC hour of receivedAt' },
        ],
        parameters: {
          classification: 'json',
          compressionType: 'gzip',
          // Partition projection: no crawler, no MSCK REPAIR; Athena computes the partitions' paths.
          'projection.enabled': 'true',
          // Tenants are not enumerable in advance: a query names them.
          'projection.tenant.type': 'injected',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': '2024-01-01,NOW',
          'projection.dt.interval': '1',
          'projection.dt.interval.unit': 'DAYS',
          'projection.hour.type': 'integer',
          'projection.hour.range': '0,23',
          'projection.hour.digits': '2',
          'storage.location.template': `${root}tenant=\${tenant}/dt=\${dt}/hour=\${hour}/`,
        },
        storageDescriptor: {
          location: root,
          compressed: true,
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: {
            // OpenX: nested JSON read into a string column comes back as its JSON text; lines it cannot parse are skipped.
            serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
            parameters: { 'ignore.malformed.json': 'true', 'case.insensitive': 'true' },
          },
          columns: COLUMNS,
        },
      },
    });
    this.table.addResourceDependency(this.database);
  }
}
