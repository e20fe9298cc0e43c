/**
 * handle.js: the handle, bff's opaque credential for this WeChat user. Obtained on first use
 * (wx.login → POST /wechat/session), kept in wx storage and nowhere else, renewed after a 401
 * BFF.UNAUTHENTICATED, dropped after a 401 BFF.SESSION_REVOKED; one wechat/session call at a
 * time, whoever asks.
 */
'use strict';

const { clientError, isCode } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { ROUTES } = require('./routes.js');
const { readStored, writeStored, removeStored } = require('./storage.js');
const { singleFlight } = require('./single-flight.js');
const { sendWithRetries } = require('./retry.js');
const { wxLoginCode } = require('./wx-login.js');
const { forgetIdToken } = require('./id-token.js');

/** @typedef {import('./context.js').Context} Context */

/**
 * wx.login → POST /wechat/session; a refused code (used, expired) gets one fresh try.
 * @param {Context} ctx
 */
async function openWechatSession(ctx) {
  const appid = ctx.config.appid;
  const makeBody = async () => {
    const body = { wx_code: await wxLoginCode(ctx.config.login) };
    return appid ? Object.assign(body, { appid }) : body; // which mini program, where bff serves several
  };
  for (let codeRetried = false; ; codeRetried = true) {
    try {
      const answer = asRecord(await sendWithRetries(ctx, ROUTES.wechatSession, makeBody, null));
      const handle = answer && answer.handle;
      if (typeof handle !== 'string' || !handle) {
        throw clientError('CLIENT.BAD_RESPONSE', 'wechat/session answered no handle');
      }
      return handle;
    } catch (err) {
      if (codeRetried || !isCode(err, 'BFF.WECHAT_CODE_INVALID')) throw err;
    }
  }
}

/** One wechat/session call at a time, whoever asks; the handle goes to storage only. @param {Context} ctx */
function obtainHandle(ctx) {
  const { storage, keys } = ctx.config;
  return singleFlight(
    ctx.handleFlight,
    () => openWechatSession(ctx),
    (handle) => {
      writeStored(storage, keys.handle, handle);
      return handle;
    },
  );
}

/** The stored handle, or a new one. @param {Context} ctx @returns {Promise<string>} */
function ensureHandle(ctx) {
  if (ctx.handleFlight.promise) return ctx.handleFlight.promise;
  const stored = readStored(ctx.config.storage, ctx.config.keys.handle);
  return stored ? Promise.resolve(stored) : obtainHandle(ctx);
}

/**
 * After a 401 with `stale`: a new handle, unless another call already got one.
 * @param {Context} ctx
 * @param {string} stale
 */
function renewHandle(ctx, stale) {
  if (ctx.handleFlight.promise) return ctx.handleFlight.promise;
  const { storage, keys } = ctx.config;
  const stored = readStored(storage, keys.handle);
  if (stored && stored !== stale) return Promise.resolve(stored);
  removeStored(storage, keys.handle);
  return obtainHandle(ctx);
}

/** Forget the stored handle (after logout). @param {Context} ctx */
function dropHandle(ctx) {
  removeStored(ctx.config.storage, ctx.config.keys.handle);
}

/**
 * After a 401 BFF.SESSION_REVOKED with `revoked` (this device was signed out on another one, or
 * by an operator): the handle leaves storage and the id_token memory, unless another call has
 * stored a newer handle meanwhile. No new handle is obtained here: the app says "signed out".
 * @param {Context} ctx
 * @param {string} revoked
 */
function dropRevokedHandle(ctx, revoked) {
  const { storage, keys } = ctx.config;
  const stored = readStored(storage, keys.handle);
  if (stored && stored !== revoked) return; // a newer handle: not this one's to clear
  if (stored) removeStored(storage, keys.handle);
  forgetIdToken(ctx);
}

module.exports = { ensureHandle, renewHandle, dropHandle, dropRevokedHandle };
