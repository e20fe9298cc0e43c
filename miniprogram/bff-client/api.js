/**
 * api.js: callApi, a request to the company's own APIs behind the same gateway as bff, with the
 * handle as `Authorization: Bearer`. The gateway asks bff about the handle; when bff refuses it
 * (401/403 with X-BFF-Error) that is a BffError, anything else is the API's own answer, as is.
 */
'use strict';

const { clientError } = require('./errors.js');
const { asRecord, parseBody, headerValue } = require('./wire.js');
const { exchange, newRequestId, errorFromAnswer } = require('./transport.js');
const { ensureHandle, renewHandle, dropRevokedHandle } = require('./handle.js');
const { forgetIdToken } = require('./id-token.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('../bff-client').ApiRequest} ApiRequestT */
/** @typedef {import('../bff-client').RequestOptions} RequestOptionsT */
/** @typedef {import('../bff-client').RequestResult} RequestResultT */

/** `https://host[:port]`, lower-cased, or null. @param {string} url */
function originOf(url) {
  const m = /^https?:\/\/[^/?#]+/i.exec(url);
  return m ? m[0].toLowerCase() : null;
}

/**
 * Where the request goes: a path (`/orders/42`) joined to baseUrl, or a full URL on baseUrl's
 * origin; null for anything else (the handle is sent nowhere else).
 * @param {string} gatewayUrl @param {unknown} url
 */
function apiUrl(gatewayUrl, url) {
  if (typeof url !== 'string' || !url) return null;
  if (url.charAt(0) === '/') return url.charAt(1) === '/' ? null : gatewayUrl + url; // `//host`: foreign
  const origin = originOf(url);
  return origin !== null && origin === originOf(gatewayUrl) ? url : null;
}

/**
 * The caller's headers, with our Authorization (any spelling of theirs replaced) and, unless
 * they sent one, our X-Request-ID.
 * @param {{ [name: string]: string } | undefined} given @param {string | null} handle
 * @param {string} requestId
 */
function apiHeaders(given, handle, requestId) {
  /** @type {{ [name: string]: string }} */
  const header = {};
  Object.keys(given || {}).forEach((name) => {
    if (!(handle && name.toLowerCase() === 'authorization')) header[name] = (given || {})[name];
  });
  if (headerValue(header, 'X-Request-ID') === undefined) header['X-Request-ID'] = requestId;
  if (handle) header.Authorization = 'Bearer ' + handle;
  return header;
}

/**
 * What bff refused, when the gateway answered for it: 401/403 with X-BFF-Error (or, without the
 * header, bff's envelope with a BFF.* code); null when the answer is the API's own.
 * @param {RequestResultT} res
 */
function gatewayRefusal(res) {
  if (res.statusCode !== 401 && res.statusCode !== 403) return null;
  const named = headerValue(res.header, 'X-BFF-Error');
  if (named !== undefined && named.trim()) return named.trim();
  const body = asRecord(parseBody(res.data));
  const code = body && body.error_code;
  return typeof code === 'string' && code.indexOf('BFF.') === 0 ? code : null;
}

/**
 * The caller's options for wx.request, without callbacks (ours take their place).
 * @param {ApiRequestT} options
 */
function passedOptions(options) {
  const all = /** @type {{ [option: string]: unknown }} */ (/** @type {unknown} */ (options));
  /** @type {{ [option: string]: unknown }} */
  const rest = {};
  Object.keys(all).forEach((name) => {
    if (!/^(success|fail|complete)$/.test(name)) rest[name] = all[name];
  });
  return rest;
}

/**
 * One attempt with `handle` (null: handles: false, no Authorization of ours).
 * @param {Context} ctx @param {ApiRequestT} options @param {string} url @param {string | null} handle
 */
async function attempt(ctx, options, url, handle) {
  const given = options.header;
  const theirs = headerValue(given, 'X-Request-ID');
  const requestId = theirs !== undefined ? theirs : newRequestId(ctx);
  const req = /** @type {Omit<RequestOptionsT, 'success' | 'fail'>} */ (
    Object.assign(passedOptions(options), {
      url,
      method: options.method || 'GET',
      header: apiHeaders(given, handle, requestId),
      dataType: options.dataType || 'json',
      timeout: options.timeout || ctx.config.timeoutMs,
    })
  );
  const res = await exchange(ctx, req, requestId);
  return { res, requestId, code: gatewayRefusal(res) };
}

/**
 * The request with the handle: after 401 BFF.UNAUTHENTICATED a new handle (wx.login +
 * wechat/session, shared with any other call) and the request once more; 401
 * BFF.SESSION_REVOKED drops the handle, no new one; BFF.SESSION_EXPIRED forgets the id_token.
 * @param {Context} ctx @param {ApiRequestT} options @returns {Promise<RequestResultT>}
 */
async function callApi(ctx, options) {
  const url = apiUrl(ctx.config.gatewayUrl, options && options.url);
  if (url === null) {
    const msg = 'callApi takes a path ("/orders") or a URL on baseUrl\'s origin';
    throw clientError('CLIENT.BAD_ARGUMENT', msg + ': the handle goes nowhere else');
  }
  let handle = ctx.config.useHandles ? await ensureHandle(ctx) : null;
  for (let renewed = false; ; renewed = true) {
    const { res, requestId, code } = await attempt(ctx, options, url, handle);
    if (code === null) return res;
    if (code === 'BFF.UNAUTHENTICATED' && handle && !renewed) {
      handle = await renewHandle(ctx, handle);
      continue;
    }
    if (code === 'BFF.SESSION_REVOKED' && handle) dropRevokedHandle(ctx, handle);
    if (code === 'BFF.SESSION_EXPIRED') forgetIdToken(ctx);
    throw errorFromAnswer(res, requestId, ctx.config.now(), code);
  }
}

module.exports = { callApi, apiUrl };
