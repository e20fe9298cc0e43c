/**
 * id-token.js: the id_token in the client's memory (never in storage), and when it is due for a
 * refresh: shortly before it expires, by its own lifetime (a wrong device clock does not matter).
 */
'use strict';

const { idTokenLifetimeS } = require('./jwt.js');

/** @typedef {import('./context.js').Context} Context */

/**
 * @param {Context} ctx
 * @param {string} token
 * @param {number | null} expiresInS (null: read the token's claims)
 */
function keepIdToken(ctx, token, expiresInS) {
  const { now, refreshMarginS } = ctx.config;
  const lifetime = expiresInS !== null ? expiresInS : idTokenLifetimeS(token, now());
  const margin = Math.min(refreshMarginS, lifetime / 2);
  ctx.idToken = token;
  ctx.idTokenDueAt = now() + Math.max(0, lifetime - margin) * 1000;
}

/** @param {Context} ctx */
function forgetIdToken(ctx) {
  ctx.idToken = null;
  ctx.idTokenDueAt = 0;
}

/** The id_token in memory while it is not due for a refresh, else null. @param {Context} ctx */
function currentIdToken(ctx) {
  const now = ctx.config.now;
  return ctx.idToken && now() < ctx.idTokenDueAt ? ctx.idToken : null;
}

module.exports = { keepIdToken, forgetIdToken, currentIdToken };
