import { resources as alarmResources } from '../../infra/alarms';
import { numberParam, type VariableContext } from '../../infra/params';
import { layoutOf } from '../../infra/stores';

/** A serverless variable context answering `param:<name>` from `params` (fallbacks after a comma). */
function ctx(params: Record<string, unknown>): VariableContext {
  return {
    resolveVariable: async (address) => {
      const [name, fallback] = address.split(/,\s*/) as [string, string | undefined];
      const key = name.replace(/^param:/, '');
      if (key in params) return params[key];
      if (fallback !== undefined) return fallback.replace(/^'(.*)'$/, '$1');
      throw new Error(`no ${address}`);
    },
  };
}

describe('layoutOf', () => {
  it('adds the access log bucket to the stores and the control bucket', () => {
    expect(layoutOf(['server1'], 'acme').logs).toEqual({ name: 'logs', bucket: 'acme-logs', logicalId: 'AccessLogsBucket' });
  });

  it.each(['control', 'logs'])('refuses a store called %s, whose bucket is the stack’s own', (name) => {
    expect(() => layoutOf(['server1', name], 'acme')).toThrow(/may not be called "control" or "logs"/);
  });
});

describe('numberParam', () => {
  it('takes a YAML number or the string the command line gives', async () => {
    expect(await numberParam(ctx({ n: 30 }), 'n')).toBe(30);
    expect(await numberParam(ctx({ n: '7' }), 'n')).toBe(7);
    expect(await numberParam(ctx({ n: '0.5' }), 'n', { min: 0.1, whole: false })).toBe(0.5);
  });

  it.each([['ten'], [''], ['0'], ['-3'], ['1.5'], [null]])('refuses %p, naming the param', async (v) => {
    await expect(numberParam(ctx({ noncurrentDays: v }), 'noncurrentDays')).rejects.toThrow(/param noncurrentDays must be a whole number of at least 1/);
  });
});

describe('alarms', () => {
  const actionsOf = (r: Awaited<ReturnType<typeof alarmResources>>) =>
    Object.values(r.Resources).map((a) => [a.Properties.AlarmActions, a.Properties.OKActions]);

  it('have no actions when alarmTopicArn is empty or not given', async () => {
    for (const params of [{ alarmTopicArn: '' }, {}]) {
      const r = await alarmResources(ctx(params));
      expect(Object.keys(r.Resources).length).toBeGreaterThan(0);
      for (const actions of actionsOf(r)) expect(actions).toEqual([undefined, undefined]);
    }
  });

  it('notify the topic when they fire and when they clear', async () => {
    const topic = 'arn:aws:sns:eu-west-1:123456789012:ops';
    for (const actions of actionsOf(await alarmResources(ctx({ alarmTopicArn: topic })))) expect(actions).toEqual([[topic], [topic]]);
  });

  it.each(['ops', 'arn:aws:sqs:eu-west-1:123456789012:ops', 'arn:aws:sns:eu-west-1:1234:ops'])('refuse %s as alarmTopicArn', async (topic) => {
    await expect(alarmResources(ctx({ alarmTopicArn: topic }))).rejects.toThrow(/must be the ARN of an SNS topic/);
  });
});
