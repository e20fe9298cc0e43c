/**
 * session.js: the server-side session once signed in: refresh (one at a time), getIdToken,
 * GET /session, logout, and unbindWechat (which ends it as logout does).
 */
'use strict';

const { clientError, isCode } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { ROUTES } = require('./routes.js');
const { singleFlight } = require('./single-flight.js');
const { perform } = require('./perform.js');
const { dropHandle } = require('./handle.js');
const { keepIdToken, forgetIdToken, currentIdToken } = require('./id-token.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('../bff-client').RefreshResponse} RefreshResponseT */
/** @typedef {import('../bff-client').SessionStatusResponse} SessionStatusResponseT */

/**
 * A refresh answer: kept unless logout came meanwhile.
 * @param {Context} ctx
 * @param {unknown} data
 * @param {number} startedAt
 * @returns {RefreshResponseT}
 */
function acceptRefresh(ctx, data, startedAt) {
  const body = asRecord(data);
  const token = body && body.id_token;
  const expiresIn = body && body.expires_in;
  if (typeof token !== 'string' || !token || typeof expiresIn !== 'number') {
    throw clientError('CLIENT.BAD_RESPONSE', 'refresh answered no id_token');
  }
  if (startedAt === ctx.epoch) keepIdToken(ctx, token, expiresIn);
  return { id_token: token, expires_in: expiresIn };
}

/** POST /session/refresh; concurrent callers share one. @param {Context} ctx */
function refresh(ctx) {
  const startedAt = ctx.epoch; // used only when this call starts the refresh
  return singleFlight(
    ctx.refreshFlight,
    () => perform(ctx, ROUTES.refresh),
    (data) => acceptRefresh(ctx, data, startedAt),
    (err) => {
      if (isCode(err, 'BFF.SESSION_EXPIRED')) forgetIdToken(ctx); // sign in again
    },
  );
}

/** @param {Context} ctx */
async function getIdToken(ctx) {
  const token = currentIdToken(ctx);
  if (token) return token;
  return (await refresh(ctx)).id_token;
}

/** @param {Context} ctx @returns {Promise<SessionStatusResponseT>} */
async function sessionStatus(ctx) {
  const body = asRecord(await perform(ctx, ROUTES.session));
  if (!body || typeof body.active !== 'boolean') {
    throw clientError('CLIENT.BAD_RESPONSE', 'session answered no "active"');
  }
  /** @type {SessionStatusResponseT} */
  const out = { active: body.active };
  if (typeof body.expires_in === 'number') out.expires_in = body.expires_in;
  return out;
}

/** @param {Context} ctx */
async function logout(ctx) {
  ctx.epoch += 1;
  forgetIdToken(ctx);
  try {
    await perform(ctx, ROUTES.logout);
  } finally {
    dropHandle(ctx); // bff deleted it (or it is unusable anyway)
  }
}

/**
 * DELETE /wechat-binding: the WeChat account is unbound from the IDaaS account, and bff ends
 * every session and handle of the user. Once it answered, this device forgets the handle, the
 * id_token and any pending password policy, as after logout; after an error nothing is dropped
 * (the binding, and the handle, may well be intact). Never retried.
 * @param {Context} ctx
 */
async function unbindWechat(ctx) {
  await perform(ctx, ROUTES.unbindWechat);
  ctx.epoch += 1; // answers to calls started before are not kept
  ctx.currentSession = null;
  ctx.passwordPolicy = null;
  forgetIdToken(ctx);
  dropHandle(ctx);
}

module.exports = { refresh, getIdToken, sessionStatus, logout, unbindWechat };
