/**
 * transport.js: one HTTP exchange through `request` (wx.request): the timeout (wx's, and our own
 * guard for a request that never calls back); for bff, its headers and the answer turned into a
 * value or a BffError (send); for the company's APIs, wx's answer as it came (exchange, api.js).
 * No retries here (retry.js).
 */
'use strict';

const { BffError, clientError } = require('./errors.js');
const { asRecord, parseBody, headerValue, parseRetryAfter, randomHex } = require('./wire.js');
const { deviceHeaders } = require('./device.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('./routes.js').Route} Route */
/** @typedef {import('./wire.js').Json} Json */
/** @typedef {import('../bff-client').RequestOptions} RequestOptionsT */
/** @typedef {import('../bff-client').RequestResult} RequestResultT */

/** Our own timer beyond `timeoutMs`, for a request implementation that never calls back. */
const GUARD_MS = 2000;

/**
 * @param {Context} ctx
 * @param {Json | undefined} body
 * @param {string | null} handle
 * @param {string} requestId
 */
function requestHeaders(ctx, body, handle, requestId) {
  /** @type {{ [name: string]: string }} */
  const header = Object.assign({}, deviceHeaders(ctx), { 'X-Request-ID': requestId });
  if (handle) header.Authorization = 'Bearer ' + handle;
  if (body !== undefined) header['Content-Type'] = 'application/json';
  return header;
}

/**
 * A 4xx/5xx answer: bff's envelope, or `HTTP.<status>` for a foreign error page; `code`, when
 * given, names the error instead (a gateway's X-BFF-Error, whatever body came with it).
 * @param {RequestResultT} res
 * @param {string} requestId
 * @param {number} nowMs
 * @param {string} [code]
 */
function errorFromAnswer(res, requestId, nowMs, code) {
  const body = asRecord(parseBody(res.data));
  const envelope = body && typeof body.error_code === 'string' ? body : null;
  const field = (/** @type {string} */ name) => {
    const v = envelope && envelope[name];
    return typeof v === 'string' ? v : '';
  };
  return new BffError({
    error_code: code || (envelope ? field('error_code') : 'HTTP.' + res.statusCode),
    error_msg: field('error_msg'),
    request_id: field('request_id') || headerValue(res.header, 'X-Request-ID') || requestId,
    status: res.statusCode,
    retry_after: parseRetryAfter(headerValue(res.header, 'Retry-After'), nowMs),
    errors: (envelope && asRecord(envelope.errors)) || undefined,
  });
}

/** wx.request's `fail`: no answer came. @param {{ errMsg: string }} e @param {string} requestId */
function errorFromFailure(e, requestId) {
  const msg = (e && e.errMsg) || 'request failed';
  return clientError(/timeout/i.test(msg) ? 'CLIENT.TIMEOUT' : 'CLIENT.NETWORK', msg, requestId);
}

/** @param {unknown} task what `request` returned: wx's RequestTask has abort() */
function abortTask(task) {
  const t = asRecord(task);
  if (t && typeof t.abort === 'function') t.abort();
}

/**
 * Hand `req` to `request` with callbacks of its own. Resolves with wx's result, whatever its
 * status; rejects with CLIENT.TIMEOUT / CLIENT.NETWORK when no answer came (wx's `fail`, a
 * `request` that throws, or none within `req.timeout` and a guard: the task is then aborted).
 * @param {Context} ctx @param {Omit<RequestOptionsT, 'success' | 'fail'>} req @param {string} requestId
 * @returns {Promise<RequestResultT>}
 */
function exchange(ctx, req, requestId) {
  const request = ctx.config.request;
  return new Promise((resolve, reject) => {
    const call = { done: false, task: /** @type {unknown} */ (null) };
    const once = (/** @type {BffError | null} */ err, /** @type {RequestResultT | null} */ res) => {
      if (call.done) return;
      call.done = true;
      clearTimeout(guard);
      if (err) reject(err);
      else resolve(/** @type {RequestResultT} */ (res));
    };
    const guard = setTimeout(() => {
      abortTask(call.task);
      once(clientError('CLIENT.TIMEOUT', 'no answer in time', requestId), null);
    }, req.timeout + GUARD_MS);
    /** @type {RequestOptionsT} */
    const full = Object.assign({}, req, {
      success: (/** @type {RequestResultT} */ res) => once(null, res),
      fail: (/** @type {{ errMsg: string }} */ e) => once(errorFromFailure(e, requestId), null),
    });
    try {
      call.task = request(full);
    } catch (e) {
      once(clientError('CLIENT.NETWORK', String(e), requestId), null);
    }
  });
}

/** An X-Request-ID of ours: bff keeps it, and logs it. @param {Context} ctx */
function newRequestId(ctx) {
  return 'mp-' + ctx.config.now().toString(36) + '-' + randomHex(6);
}

/**
 * Send one request to bff. Resolves with the parsed 2xx body (null when empty); rejects with a
 * BffError: bff's envelope, `HTTP.<status>` for a foreign error page, or CLIENT.TIMEOUT /
 * CLIENT.NETWORK when no answer came.
 * @param {Context} ctx @param {Route} r @param {Json | undefined} body @param {string | null} handle
 * @returns {Promise<unknown>}
 */
async function send(ctx, r, body, handle) {
  const { baseUrl, now, timeoutMs } = ctx.config;
  const requestId = newRequestId(ctx);
  const header = requestHeaders(ctx, body, handle, requestId);
  /** @type {Omit<RequestOptionsT, 'success' | 'fail'>} */
  const req = { url: baseUrl + r.path, method: r.method, header, dataType: 'json', timeout: timeoutMs };
  if (body !== undefined) req.data = body;
  const res = await exchange(ctx, req, requestId);
  if (res.statusCode >= 200 && res.statusCode < 300) return parseBody(res.data);
  throw errorFromAnswer(res, requestId, now());
}

module.exports = { send, exchange, newRequestId, errorFromAnswer };
