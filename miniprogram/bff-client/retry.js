/**
 * retry.js: when a call is sent again. Once with a new handle after 401 BFF.UNAUTHENTICATED
 * (nothing reached the IDaaS then, so even a bind may), never after 401 BFF.SESSION_REVOKED
 * (the handle is dropped: signed out elsewhere), and after 409/429/503 only for the routes
 * that are safe to repeat, after Retry-After or a short backoff.
 */
'use strict';

const { BffError, isCode } = require('./errors.js');
const { send } = require('./transport.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('./options.js').RetryPolicy} RetryPolicy */
/** @typedef {import('./routes.js').Route} Route */
/** @typedef {import('./wire.js').Json} Json */
/**
 * How a call gets its handle: `ensure` before the first attempt, `renew` after a 401
 * BFF.UNAUTHENTICATED; `revoked` after a 401 BFF.SESSION_REVOKED.
 * @typedef {{ ensure: (ctx: Context) => Promise<string>,
 *             renew: (ctx: Context, stale: string) => Promise<string>,
 *             revoked: (ctx: Context, handle: string) => void }} Handles
 */

/**
 * The server's own hint, or a backoff, in ms; null: not a retryable error.
 * @param {RetryPolicy} policy
 * @param {BffError} err
 * @param {number} retries
 */
function serverDelay(policy, err, retries) {
  const hinted = err.retry_after !== null ? err.retry_after * 1000 : null;
  if (err.error_code === 'BFF.RATE_LIMITED') {
    return hinted; // no hint: don't guess, let the UI decide
  }
  if (err.error_code === 'BFF.REQUEST_IN_PROGRESS') {
    // Another call of this WeChat user holds its lock (a double tap, a second device).
    return hinted !== null ? hinted : 1000;
  }
  if (
    err.status === 503 &&
    (err.error_code === 'BFF.UPSTREAM_UNAVAILABLE' || err.error_code === 'BFF.SESSION_STORE_UNAVAILABLE')
  ) {
    return hinted !== null ? hinted : Math.min(policy.baseDelayMs * Math.pow(2, retries), policy.maxDelayMs);
  }
  return null;
}

/**
 * How long to wait before sending a repeatable call again, or null to give up now.
 * @param {RetryPolicy} policy @param {unknown} err @param {number} retries (retries already made)
 */
function retryDelay(policy, err, retries) {
  if (!(err instanceof BffError) || retries >= policy.attempts) return null;
  const delay = serverDelay(policy, err, retries);
  if (delay === null) return null;
  if (delay > policy.maxDelayMs) return null; // a long wait is the user's: show a countdown
  return delay + Math.floor(Math.random() * Math.min(250, delay / 4 + 1)); // spread the phones
}

/**
 * A call of `r` with its policies: the handle from `handles` (none when null, or for a route
 * without auth, or with handles: false), renewed once on 401 BFF.UNAUTHENTICATED, dropped on
 * 401 BFF.SESSION_REVOKED (and the error thrown); then the retry policy for
 * repeatable routes. `makeBody` runs per attempt (a fresh wx.login code each).
 * @param {Context} ctx @param {Route} r @param {(() => Json | Promise<Json>) | undefined} makeBody
 * @param {Handles | null} handles
 * @returns {Promise<unknown>}
 */
async function sendWithRetries(ctx, r, makeBody, handles) {
  const { retry, sleep } = ctx.config;
  let handle = handles && r.auth && ctx.config.useHandles ? await handles.ensure(ctx) : null;
  let renewed = false;
  let retries = 0;
  for (;;) {
    const body = makeBody ? await makeBody() : undefined;
    try {
      return await send(ctx, r, body, handle);
    } catch (err) {
      if (handles && handle && isCode(err, 'BFF.SESSION_REVOKED')) handles.revoked(ctx, handle);
      if (handles && handle && !renewed && isCode(err, 'BFF.UNAUTHENTICATED')) {
        renewed = true;
        handle = await handles.renew(ctx, handle);
        continue;
      }
      const delay = r.repeatable ? retryDelay(retry, err, retries) : null;
      if (delay === null) throw err;
      retries += 1;
      await sleep(delay);
    }
  }
}

module.exports = { retryDelay, sendWithRetries };
