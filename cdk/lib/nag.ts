import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Accepts cdk-nag findings on a construct and everything in it, each with its reason. cdk-nag 3
 * reads these acknowledgments (CDK's Validations) and fails the synth on any finding left.
 * A finding about one statement's resource or action is `Rule[Resource::…]` / `Rule[Action::…]`.
 */
export function acknowledge(scope: IConstruct, ...findings: { id: string; reason: string }[]): void {
  Validations.of(scope).acknowledge(...findings);
}

/** A resource's ARN as cdk-nag writes it in a finding: `<LogicalId.Arn>`. */
export function nagArn(resource: IConstruct): string {
  const element = (resource.node.defaultChild ?? resource) as CfnElement;
  return `<${Stack.of(resource).getLogicalId(element)}.Arn>`;
}
