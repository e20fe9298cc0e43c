/**
 * sign-in.js: the calls that answer a login outcome (login, the phone login, every bind and
 * register route): the outcome trimmed and its id_token kept, and a lost answer (timeout,
 * network) settled by asking GET /session whether it went through.
 */
'use strict';

const { BffError, clientError, isCode } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { perform } = require('./perform.js');
const { keepIdToken, forgetIdToken } = require('./id-token.js');
const { sessionStatus } = require('./session.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('./routes.js').Route} Route */
/** @typedef {import('./wire.js').Json} Json */
/** @typedef {import('../bff-client').Outcome} OutcomeT */

/**
 * A login or bind answer: keep the id_token it brought, trim the rest.
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
  if (startedAt !== ctx.epoch) return out; // logged out meanwhile: keep nothing
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
  forgetIdToken(ctx); // none came with it; getIdToken() refreshes
  /** @type {OutcomeT} */
  const out = { status: 'SUCCESS', flows: [], recovered: true };
  if (typeof status.expires_in === 'number') out.expire = status.expires_in;
  return out;
}

/**
 * @param {Context} ctx
 * @param {Route} r
 * @param {() => Json | Promise<Json>} makeBody
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
