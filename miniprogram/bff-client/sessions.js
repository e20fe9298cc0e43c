/**
 * sessions.js: the user's sessions, one per device with a handle: GET /sessions lists them,
 * DELETE /sessions/{id} ends one (this device's too: then it is signed out here as well).
 */
'use strict';

const { clientError } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { ROUTES, withParams } = require('./routes.js');
const { readStored } = require('./storage.js');
const { perform } = require('./perform.js');
const { dropHandle } = require('./handle.js');
const { forgetIdToken } = require('./id-token.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('../bff-client').SessionInfo} SessionInfoT */

/** @param {Context} ctx */
function storedHandle(ctx) {
  return readStored(ctx.config.storage, ctx.config.keys.handle);
}

/**
 * GET /sessions; the one marked `current` is remembered with the handle it was listed for.
 * @param {Context} ctx @returns {Promise<SessionInfoT[]>}
 */
async function listSessions(ctx) {
  const body = asRecord(await perform(ctx, ROUTES.sessions));
  const list = body && body.sessions;
  const valid = (/** @type {unknown} */ s) => {
    const one = asRecord(s);
    return one !== null && typeof one.id === 'string' && one.id !== '';
  };
  if (!Array.isArray(list) || !list.every(valid)) {
    throw clientError('CLIENT.BAD_RESPONSE', 'sessions answered no list of sessions');
  }
  const sessions = /** @type {SessionInfoT[]} */ (list);
  const mine = sessions.filter((s) => s.current === true)[0];
  const handle = storedHandle(ctx);
  ctx.currentSession = mine && handle ? { id: mine.id, handle } : null;
  return sessions;
}

/**
 * DELETE /sessions/{id}. When `id` is this device's (as listSessions named it, for the handle
 * still stored), bff has ended this device's handle: it leaves storage, the id_token memory.
 * @param {Context} ctx @param {string} id
 */
async function endSession(ctx, id) {
  if (typeof id !== 'string' || !id) {
    throw clientError('CLIENT.BAD_ARGUMENT', 'endSession takes a session id from listSessions()');
  }
  await perform(ctx, withParams(ROUTES.endSession, { id }));
  const current = ctx.currentSession;
  if (current && current.id === id && storedHandle(ctx) === current.handle) {
    ctx.currentSession = null;
    ctx.epoch += 1; // as after logout: answers to calls started before are not kept
    forgetIdToken(ctx);
    dropHandle(ctx);
  }
}

module.exports = { listSessions, endSession };
