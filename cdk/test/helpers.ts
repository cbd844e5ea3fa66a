import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../lib/app';
import { FlagstreamStack } from '../lib/flagstream-stack';

export interface Synthesized {
  app: App;
  stack: FlagstreamStack;
  template: Template;
  json: CfnTemplate;
  cleanup(): void;
}

export interface CfnTemplate {
  Parameters: Record<string, { Type: string; Default?: unknown; MinValue?: number; MaxValue?: number; AllowedValues?: string[] }>;
  Mappings: Record<string, Record<string, Record<string, unknown>>>;
  Resources: Record<string, { Type: string; Properties: Record<string, any>; Condition?: string }>;
  Outputs: Record<string, { Value: unknown }>;
}

/** The stack, synthesized once, with a stand-in runner JAR (the real one needs Maven). */
export function synthesize(context: Record<string, string> = {}): Synthesized {
  const dir = mkdtempSync(join(tmpdir(), 'flagstream-cdk-'));
  const jar = join(dir, 'jar', 'flagstream-runner.jar');
  mkdirSync(join(dir, 'jar'));
  writeFileSync(jar, 'PK stand-in for the runner JAR');
  const { app, stack } = createApp({ outdir: join(dir, 'cdk.out'), context: { region: 'us-east-1', ...context }, runnerJar: jar });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as CfnTemplate, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function resourcesOf(json: CfnTemplate, type: string): [string, CfnTemplate['Resources'][string]][] {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

export function logicalIdOf(json: CfnTemplate, type: string, prefix: string): string {
  const ids = resourcesOf(json, type).map(([id]) => id).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} named ${prefix}…, found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

/**
 * Evaluates a template value the way CloudFormation would, with made-up physical names:
 * parameters take their defaults, a bucket is `<logical id>-bucket` in lower case, a stream
 * its Name, a role `arn:aws:iam::<account>:role/<logical id>`.
 */
export function evaluate(json: CfnTemplate, value: unknown, parameters: Record<string, string> = {}): any {
  const ev = (v: unknown): any => evaluate(json, v, parameters);
  if (Array.isArray(value)) return value.map(ev);
  if (!value || typeof value !== 'object') return value;
  const [fn, arg] = Object.entries(value as Record<string, any>)[0];
  switch (fn) {
    case 'Ref': {
      const pseudo: Record<string, string> = { 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::Partition': 'aws', 'AWS::StackName': 'Flagstream', 'AWS::URLSuffix': 'amazonaws.com' };
      if (pseudo[arg]) return pseudo[arg];
      if (json.Parameters[arg]) return parameters[arg] ?? String(json.Parameters[arg].Default);
      const resource = json.Resources[arg];
      if (!resource) throw new Error(`Ref to unknown ${arg}`);
      if (resource.Type === 'AWS::Kinesis::Stream') return ev(resource.Properties.Name);
      if (resource.Type === 'AWS::S3::Bucket') return `${arg.toLowerCase()}-bucket`;
      return `${arg}-id`;
    }
    case 'Fn::GetAtt': {
      const [id, attribute] = arg as [string, string];
      const resource = json.Resources[id];
      if (resource.Type === 'AWS::Kinesis::Stream' && attribute === 'Arn') return `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${ev({ Ref: id })}`;
      if (resource.Type === 'AWS::IAM::Role' && attribute === 'Arn') return `arn:aws:iam::${ACCOUNT}:role/${id}`;
      if (resource.Type === 'AWS::S3::Bucket' && attribute === 'Arn') return `arn:aws:s3:::${ev({ Ref: id })}`;
      if (resource.Type === 'Custom::CDKBucketDeployment' && attribute === 'DestinationBucketArn') return `arn:aws:s3:::${ev(resource.Properties.DestinationBucketName)}`;
      if (resource.Type === 'Custom::CDKBucketDeployment' && attribute === 'SourceObjectKeys') return resource.Properties.SourceObjectKeys;
      return `${id}.${attribute}`;
    }
    case 'Fn::Join':
      return (ev(arg[1]) as unknown[]).join(arg[0]);
    case 'Fn::Select':
      return ev(arg[1])[Number(arg[0])];
    case 'Fn::Split':
      return String(ev(arg[1])).split(arg[0]);
    case 'Fn::FindInMap':
      return json.Mappings[arg[0]][ev(arg[1])][ev(arg[2])];
    case 'Fn::Sub':
      return String(arg).replace(/\$\{([^}]+)\}/g, (_, name: string) => ev({ Ref: name }));
    default:
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, ev(v)]));
  }
}

/** Every IAM policy document of the template: identity policies (inline too) and resource policies. */
export function policyDocuments(json: CfnTemplate): { where: string; statements: any[] }[] {
  const out: { where: string; statements: any[] }[] = [];
  for (const [id, resource] of Object.entries(json.Resources)) {
    const p = resource.Properties ?? {};
    const add = (where: string, doc: any) => doc && out.push({ where, statements: ([] as any[]).concat(doc.Statement) });
    if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') add(id, p.PolicyDocument);
    if (resource.Type === 'AWS::IAM::Role') for (const inline of p.Policies ?? []) add(`${id}/${inline.PolicyName}`, inline.PolicyDocument);
    if (['AWS::S3::BucketPolicy', 'AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy', 'AWS::EFS::FileSystem'].includes(resource.Type)) add(id, p.PolicyDocument ?? p.FileSystemPolicy);
    if (resource.Type === 'AWS::KMS::Key') add(id, p.KeyPolicy);
  }
  return out;
}

export const asList = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
