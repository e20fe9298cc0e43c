/**
 * options.js: createBffClient's options checked and completed with their defaults, once, into
 * the client's Config (what every other part reads; never changed afterwards).
 */
'use strict';

/** @typedef {import('../bff-client').BffClientOptions} BffClientOptionsT */
/** @typedef {import('../bff-client').RequestFunction} RequestFunctionT */
/** @typedef {import('../bff-client').LoginFunction} LoginFunctionT */
/** @typedef {import('../bff-client').StorageLike} StorageLikeT */
/** @typedef {import('../bff-client').WxLike} WxLikeT */
/**
 * @typedef {{ attempts: number, baseDelayMs: number, maxDelayMs: number }} RetryPolicy
 * @typedef {{
 *   baseUrl: string, gatewayUrl: string, request: RequestFunctionT, login: LoginFunctionT,
 *   storage: StorageLikeT, wx: WxLikeT, useHandles: boolean, timeoutMs: number, refreshMarginS: number,
 *   retry: RetryPolicy, now: () => number, sleep: (ms: number) => Promise<unknown>,
 *   keys: { handle: string, fingerprint: string }, agent: string, language: string | undefined,
 *   appid: string | undefined
 * }} Config
 */

const VERSION = '0.1.0';

/**
 * bff's worst case for one call is about 22 s: the per-openid lock wait (about 1 s) + the
 * IDaaS call (one deadline of connect + read, 2 + 8 s) + a JWKS fetch to verify the id_token
 * (2 + 8 s) + a few Redis calls, with the default IDAAS_*_TIMEOUT_S. A client that gives up
 * earlier can miss a bind that went through. 40 s leaves room for the gateway and the phone's
 * network.
 */
const DEFAULT_TIMEOUT_MS = 40000;
const API_PREFIX = '/api/v1';

/** @returns {WxLikeT | undefined} */
function globalWx() {
  return typeof wx === 'object' && wx !== null ? wx : undefined;
}

/**
 * request, login and storage: injected, else wx's. Looked up on each call, not bound once: a
 * page (or a test) may wrap wx.request later.
 * @param {BffClientOptionsT} options @param {WxLikeT} w
 */
function wxDependencies(options, w) {
  /** @type {RequestFunctionT | undefined} */
  const request =
    options.request ||
    (w.request ? (o) => /** @type {RequestFunctionT} */ (w.request).call(w, o) : undefined);
  /** @type {LoginFunctionT | undefined} */
  const login =
    options.login || (w.login ? (o) => /** @type {LoginFunctionT} */ (w.login).call(w, o) : undefined);
  const storage = options.storage || (w.getStorageSync && w.setStorageSync ? w : undefined);
  if (!request || !login || !storage) {
    const missing = [!request && 'request', !login && 'login', !storage && 'storage'];
    throw new TypeError(
      'createBffClient: no wx here; pass ' + missing.filter(Boolean).join(', ') + ' explicitly',
    );
  }
  return { request, login, storage: /** @type {StorageLikeT} */ (storage) };
}

/** @param {import('../bff-client').RetryOptions | undefined} options @returns {RetryPolicy} */
function retryPolicy(options) {
  const o = options || {};
  return {
    attempts: typeof o.attempts === 'number' ? o.attempts : 2,
    baseDelayMs: typeof o.baseDelayMs === 'number' ? o.baseDelayMs : 500,
    maxDelayMs: typeof o.maxDelayMs === 'number' ? o.maxDelayMs : 5000,
  };
}

/** @param {number} ms */
function sleepMs(ms) {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

/** @param {BffClientOptionsT} options @returns {Config} */
function resolveOptions(options) {
  if (!options || typeof options.baseUrl !== 'string' || !/^https?:\/\/[^/]/.test(options.baseUrl)) {
    throw new TypeError('createBffClient: baseUrl must be an http(s) URL, e.g. https://api.example.com');
  }
  const w = options.wx || globalWx() || {};
  const deps = wxDependencies(options, w);
  const prefix = options.storagePrefix || 'bff';
  return {
    baseUrl: options.baseUrl.replace(/\/+$/, '') + API_PREFIX,
    gatewayUrl: options.baseUrl.replace(/\/+$/, ''), // callApi's paths are joined to it
    request: deps.request,
    login: deps.login,
    storage: deps.storage,
    wx: w,
    useHandles: options.handles !== false,
    timeoutMs: options.timeoutMs || DEFAULT_TIMEOUT_MS,
    refreshMarginS: typeof options.refreshMarginS === 'number' ? options.refreshMarginS : 60,
    retry: retryPolicy(options.retry),
    now: options.now || Date.now,
    sleep: options.sleep || sleepMs,
    keys: { handle: prefix + '.handle', fingerprint: prefix + '.fingerprint' },
    agent: options.agent || 'bff-client/' + VERSION,
    language: options.language,
    appid: options.appid,
  };
}

module.exports = { resolveOptions, DEFAULT_TIMEOUT_MS, VERSION };
