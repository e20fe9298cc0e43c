/**
 * perform.js: a call of any route of bff with all its policies: the handle (handle.js), then
 * retries (retry.js). Every method goes through perform().
 */
'use strict';

const { ensureHandle, renewHandle, dropRevokedHandle } = require('./handle.js');
const { sendWithRetries } = require('./retry.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('./routes.js').Route} Route */
/** @typedef {import('./wire.js').Json} Json */

/** @type {import('./retry.js').Handles} */
const HANDLES = { ensure: ensureHandle, renew: renewHandle, revoked: dropRevokedHandle };

/**
 * @param {Context} ctx @param {Route} r @param {(() => Json | Promise<Json>) | undefined} [makeBody]
 * @returns {Promise<unknown>}
 */
function perform(ctx, r, makeBody) {
  return sendWithRetries(ctx, r, makeBody, HANDLES);
}

module.exports = { perform };
