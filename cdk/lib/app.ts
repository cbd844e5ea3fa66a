import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { join } from 'node:path';
import { controlPlaneImages } from './control-plane';
import { FlagstreamStack } from './flagstream-stack';
import { REPO_ROOT } from './paths';

export const DEFAULT_RUNNER_JAR = join(REPO_ROOT, 'flink-sql', 'runner', 'target', 'flagstream-runner.jar');

/** CDK feature flags this app is written for (what `cdk init` would put in cdk.json). */
export const FEATURE_FLAGS: Record<string, string | boolean> = {
  // Buckets take access logs through a bucket policy, not the legacy LogDeliveryWrite ACL.
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  // The file system's policy refuses clients that are not IAM-authorized (the task role is).
  '@aws-cdk/aws-efs:denyAnonymousAccess': true,
};

export interface AppOptions {
  outdir?: string;
  /** Context values (as `-c key=value` gives them): region, certificateArn, controlPlaneImage, validatorImage, stackName. */
  context?: Record<string, string>;
  runnerJar?: string;
}

/**
 * The app with its one stack, checked by cdk-nag's AWS Solutions rules: any finding not
 * acknowledged with a reason (lib/nag.ts) fails the synth.
 */
export function createApp(options: AppOptions = {}): { app: App; stack: FlagstreamStack } {
  requireLocalEsbuild();
  const app = new App({ outdir: options.outdir, context: { ...FEATURE_FLAGS, ...options.context } });
  const context = (key: string): string | undefined => (app.node.tryGetContext(key) as string | undefined) || undefined;
  const stack = new FlagstreamStack(app, context('stackName') ?? 'Flagstream', {
    description: 'Flagstream: real-time analytics on LaunchDarkly feature-flag events (streams, Managed Flink role, control plane, data lake, alarms).',
    // The region is fixed at synth (the load balancer's access logs need it); the account is the deploying credentials'.
    env: { region: context('region') ?? process.env.CDK_DEFAULT_REGION ?? 'us-east-1' },
    runnerJar: options.runnerJar ?? DEFAULT_RUNNER_JAR,
    images: controlPlaneImages({ controlPlane: context('controlPlaneImage'), validator: context('validatorImage') }),
    certificateArn: context('certificateArn'),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}

/** NodejsFunction bundles with Docker when it finds no esbuild: synth must never need Docker. */
function requireLocalEsbuild(): void {
  try {
    require.resolve('esbuild/package.json');
  } catch {
    throw new Error('esbuild is not installed (node_modules/esbuild): run `npm ci` (or `node scripts/bootstrap.mjs`); the Lambda is bundled with it, never with Docker');
  }
}
