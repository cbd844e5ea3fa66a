import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from './nag';

/** The bucket every other bucket (and the load balancer) writes its access logs to. */
export function logBucket(scope: Construct, id: string): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    // SSE-S3: the only encryption S3 server access logs and ALB access logs can be delivered to.
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [{ expiration: Duration.days(90) }],
    removalPolicy: RemovalPolicy.RETAIN,
  });
  acknowledge(bucket, { id: 'AwsSolutions-S1', reason: 'This is the access-log bucket itself; logging it into itself would log its own log deliveries without end.' });
  return bucket;
}

export interface DataBucketProps {
  logs: s3.IBucket;
  /** Prefix of this bucket's access logs in the log bucket. */
  logPrefix: string;
  versioned?: boolean;
}

/** A private, SSE-S3 encrypted, TLS-only bucket that logs its accesses; kept when the stack is deleted. */
export function dataBucket(scope: Construct, id: string, props: DataBucketProps): s3.Bucket {
  return new s3.Bucket(scope, id, {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: props.versioned ?? false,
    serverAccessLogsBucket: props.logs,
    serverAccessLogsPrefix: props.logPrefix,
    removalPolicy: RemovalPolicy.RETAIN,
  });
}
