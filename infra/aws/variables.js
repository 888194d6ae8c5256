'use strict';
// Values for serverless.yml that YAML alone cannot compute, read through
// ${file(infra/aws/variables.js):NAME}. Works with osls (v3 line) and v4 alike.

// Every secret a function reads (infra/secret-names.json, shared with the Google Cloud deploy).
// Deployed stages get a CloudFormation dynamic reference to the stage's Secrets Manager secret
// `comptoir/<stage>` (a JSON object, one key per name), resolved by CloudFormation at deploy
// time: neither this repo nor the packaged template holds a value.
const SECRETS = require('../secret-names.json');

// The `offline` stage (serverless-offline on loopback, tests/deploy) has no CloudFormation to
// resolve references: it takes the values from its own environment instead.
const OFFLINE_STAGE = 'offline';

module.exports.secretNames = SECRETS;

module.exports.secrets = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  return Object.fromEntries(
    SECRETS.map((name) => [
      name,
      stage === OFFLINE_STAGE
        ? process.env[name] || ''
        : `{{resolve:secretsmanager:comptoir/${stage}:SecretString:${name}}}`,
    ])
  );
};

// ALLOWED_ORIGINS is one comma list (what the functions read); the HTTP API's CORS wants a list.
module.exports.allowedOrigins = async ({ resolveVariable }) => {
  const raw = String(await resolveVariable('param:allowedOrigins'));
  const origins = raw
    .split(',')
    .map((origin) => origin.trim().replace(/\/$/, ''))
    .filter(Boolean);
  if (!origins.length) throw new Error('param allowedOrigins is empty');
  return origins;
};

// SQS moves a message to the dead-letter queue once it has been received maxReceiveCount
// times. The worker itself turns a message into a dead letter (with its reason, in the store)
// on attempt WORKER_MAX_ATTEMPTS, so the queue allows one delivery more: the DLQ only catches a
// message whose last attempt died before the worker could record it (shared/queue/sqs.py).
module.exports.maxReceiveCount = async ({ resolveVariable }) => {
  const attempts = Number(await resolveVariable('param:workerMaxAttempts'));
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 20) {
    throw new Error(`param workerMaxAttempts must be 1-20 (WORKER_MAX_ATTEMPTS), got ${attempts}`);
  }
  return attempts + 1;
};

// CloudWatch alarms for each function (errors, throttles, p99 duration near its timeout),
// generated from the functions of serverless.yml so that a new function gets them too. Each
// notifies the stage's AlarmTopic (serverless.yml, with the stage-wide alarms).
const DURATION_ALARM_SHARE = 0.8; // of the function's timeout
const ALARM_PERIOD_S = 300;

const lambdaAlarm = (stage, name, title, metric) => ({
  Type: 'AWS::CloudWatch::Alarm',
  Properties: {
    AlarmName: `comptoir-${stage}-${name}-${title}`,
    Namespace: 'AWS/Lambda',
    Dimensions: [{ Name: 'FunctionName', Value: `comptoir-${stage}-${name}` }],
    Period: ALARM_PERIOD_S,
    EvaluationPeriods: 1,
    ComparisonOperator: 'GreaterThanThreshold',
    TreatMissingData: 'notBreaching', // no calls, no alarm
    AlarmActions: [{ Ref: 'AlarmTopic' }],
    OKActions: [{ Ref: 'AlarmTopic' }],
    ...metric,
  },
});

// "webhook_whatsapp" -> "WebhookWhatsapp": CloudFormation logical ids are alphanumeric.
const pascal = (name) =>
  name
    .split(/[^A-Za-z0-9]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

module.exports.functionAlarms = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  const functions = await resolveVariable('self:functions');
  const defaultTimeout = Number(await resolveVariable('self:provider.timeout'));
  const resources = {};
  for (const [name, fn] of Object.entries(functions)) {
    const timeoutMs = Number(fn.timeout || defaultTimeout) * 1000;
    const id = pascal(name);
    resources[`${id}ErrorsAlarm`] = lambdaAlarm(stage, name, 'errors', {
      AlarmDescription: `${name}: a call failed (an exception or a timeout)`,
      MetricName: 'Errors',
      Statistic: 'Sum',
      Threshold: 0,
    });
    resources[`${id}ThrottlesAlarm`] = lambdaAlarm(stage, name, 'throttles', {
      AlarmDescription: `${name}: a call was refused for lack of concurrency`,
      MetricName: 'Throttles',
      Statistic: 'Sum',
      Threshold: 0,
    });
    resources[`${id}DurationAlarm`] = lambdaAlarm(stage, name, 'duration', {
      AlarmDescription: `${name}: p99 duration above ${DURATION_ALARM_SHARE * 100} % of its timeout`,
      MetricName: 'Duration',
      ExtendedStatistic: 'p99',
      Threshold: Math.round(timeoutMs * DURATION_ALARM_SHARE),
    });
  }
  return resources;
};
