/**
 * sign-in.js: the calls that answer a login outcome (login, the phone login, every bind and
 * register route, and the next steps: MFA, the password steps): the outcome trimmed, its
 * id_token kept (and a pending password step's policy), and a lost answer (timeout, network)
 * settled by asking GET /session whether it went through.
 */
'use strict';

const { BffError, clientError, isCode } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { perform } = require('./perform.js');
const { keepIdToken, forgetIdToken } = require('./id-token.js');
const { sessionStatus } = require('./session.js');
const { readPolicy } = require('./password-policy.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('./routes.js').Route} Route */
/** @typedef {import('./wire.js').Json} Json */
/** @typedef {import('../bff-client').Outcome} OutcomeT */

/** The statuses of a pending password step: their outcome may name the policy. */
const PASSWORD_STEPS = ['PASSWORD_WARN', 'PASSWORD_EXPIRED'];

/**
 * A login or bind answer: keep the id_token it brought (and a password step's policy, for
 * changePassword's own check), trim the rest.
 * @param {Context} ctx
 * @param {unknown} data
 * @param {number} startedAt
 */
function acceptOutcome(ctx, data, startedAt) {
  const body = asRecord(data);
  if (!body || typeof body.status !== 'string') {
    throw clientError('CLIENT.BAD_RESPONSE', 'the answer has no status');
  }
  /** @type {OutcomeT} */
  const out = {
    status: body.status,
    flows: Array.isArray(body.flows) ? body.flows.filter((f) => typeof f === 'string') : [],
  };
  if (typeof body.expire === 'number') out.expire = body.expire;
  const policy = PASSWORD_STEPS.indexOf(body.status) >= 0 ? readPolicy(body.password_policy) : null;
  if (policy) out.password_policy = policy;
  if (startedAt !== ctx.epoch) return out; // logged out meanwhile: keep nothing
  ctx.passwordPolicy = policy;
  if (typeof body.id_token === 'string' && body.id_token) {
    out.id_token = body.id_token;
    keepIdToken(ctx, body.id_token, null);
  } else {
    forgetIdToken(ctx); // a new answer supersedes the old one
  }
  return out;
}

/**
 * The answer to a sign-in call was lost (timeout, network). It may have gone through (bff
 * finished after the phone gave up): GET /session says whether the user is now signed in.
 * @param {Context} ctx @param {BffError} err @returns {Promise<OutcomeT>}
 */
async function recoverLostAnswer(ctx, err) {
  let status;
  try {
    status = await sessionStatus(ctx);
  } catch (e) {
    throw err; // can't tell: session_active stays undefined
  }
  err.session_active = status.active;
  if (!status.active) throw err;
  ctx.passwordPolicy = null; // signed in: no password step is pending
  forgetIdToken(ctx); // none came with it; getIdToken() refreshes
  /** @type {OutcomeT} */
  const out = { status: 'SUCCESS', flows: [], recovered: true };
  if (typeof status.expires_in === 'number') out.expire = status.expires_in;
  return out;
}

/**
 * @param {Context} ctx
 * @param {Route} r
 * @param {(() => Json | Promise<Json>) | undefined} [makeBody] none: the route takes no body
 * @returns {Promise<OutcomeT>}
 */
async function signIn(ctx, r, makeBody) {
  const startedAt = ctx.epoch;
  let data;
  try {
    data = await perform(ctx, r, makeBody);
  } catch (err) {
    if (isCode(err, 'CLIENT.TIMEOUT') || isCode(err, 'CLIENT.NETWORK')) {
      return recoverLostAnswer(ctx, /** @type {BffError} */ (err));
    }
    throw err;
  }
  return acceptOutcome(ctx, data, startedAt);
}

module.exports = { signIn };
