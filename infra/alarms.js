'use strict';
/**
 * CloudWatch alarms on what needs a person: an event or a reconcile run that failed every retry
 * (a message in a failure queue), and the replicate function failing at all (S3 events are then
 * retried or queued, but replication is late). With `--param="alarmTopicArn=arn:aws:sns:…"` they
 * notify that SNS topic when they fire and when they clear; without it (the default, empty) they
 * have no actions and are only seen in the console.
 */

/** Anything at all within five minutes; no data (an idle function, an empty queue) is fine. */
const anyIn5Minutes = {
  Period: 300,
  EvaluationPeriods: 1,
  Threshold: 0,
  ComparisonOperator: 'GreaterThanThreshold',
  TreatMissingData: 'notBreaching',
};

const queueDepth = (queue, what) => ({
  AlarmDescription: `${what} failed every retry and waits in the ${queue} queue: see README "Deploy", then dfs sync`,
  Namespace: 'AWS/SQS',
  MetricName: 'ApproximateNumberOfMessagesVisible',
  Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
  Statistic: 'Maximum',
});

const ALARMS = Object.freeze({
  ReplicationFailuresAlarm: queueDepth('ReplicationFailures', 'A replication event'),
  ReconcileFailuresAlarm: queueDepth('ReconcileFailures', 'A scheduled reconcile run'),
  ReplicateErrorsAlarm: {
    AlarmDescription: 'The replicate function failed (Lambda retries it, then queues the event in ReplicationFailures)',
    Namespace: 'AWS/Lambda',
    MetricName: 'Errors',
    Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ReplicateLambdaFunction' } }],
    Statistic: 'Sum',
  },
});

/** `resources:` entry: the alarms, notifying `param:alarmTopicArn` when it is set. */
async function resources({ resolveVariable }) {
  const topic = String((await resolveVariable("param:alarmTopicArn, ''")) ?? '').trim();
  if (topic && !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/.test(topic)) {
    throw new Error(`param alarmTopicArn must be the ARN of an SNS topic (arn:aws:sns:REGION:ACCOUNT:NAME), not "${topic}"`);
  }
  const actions = topic ? { AlarmActions: [topic], OKActions: [topic] } : {};
  const Resources = {};
  for (const [id, alarm] of Object.entries(ALARMS)) {
    Resources[id] = { Type: 'AWS::CloudWatch::Alarm', Properties: { ...alarm, ...anyIn5Minutes, ...actions } };
  }
  return { Resources };
}

module.exports = { resources };
