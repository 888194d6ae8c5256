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
