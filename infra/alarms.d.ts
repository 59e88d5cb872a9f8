/** Types of infra/alarms.js. */
import type { VariableContext } from './params';

/** The alarms as CloudFormation resources, notifying `param:alarmTopicArn` when set; throws on a malformed ARN. */
export function resources(ctx: VariableContext): Promise<{ Resources: Record<string, { Type: string; Properties: Record<string, any> }> }>;
