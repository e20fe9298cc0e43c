/**
 * bff-client.js: the WeChat mini program's client for bff, the login backend-for-frontend.
 *
 * One file, no dependencies, CommonJS, ES2017 (turn on "Enhanced compile" / 增强编译 for
 * async/await on old base libraries). Copy it (and bff-client.d.ts for TypeScript) into the mini
 * program, then:
 *
 *   const { createBffClient, nextStep } = require('./bff-client');
 *   const bff = createBffClient({ baseUrl: 'https://api.example.com' });
 *
 *   const out = await bff.login();                  // wx.login → wechat/session → login
 *   if (nextStep(out).step === 'BIND') await bff.bindWithPassword(userName, password);
 *   const idToken = await bff.getIdToken();         // for your other APIs, refreshed in time
 *   await bff.logout();
 *
 * What it does so the pages don't have to (the guide is docs/miniprogram.md):
 *  - the handle: obtained on first use (wx.login → POST /wechat/session), kept in wx storage and
 *    nowhere else, re-obtained once when bff answers 401 BFF.UNAUTHENTICATED; concurrent calls
 *    share one wechat/session call;
 *  - the id_token: memory only (never storage), refreshed shortly before it expires, one refresh
 *    at a time; BFF.SESSION_EXPIRED forgets it and means "sign in again";
 *  - the device headers (X-operating-sys-version, X-device-fingerprint, X-agent, X-L) on every
 *    call, and an X-Request-ID per request that support can look up in bff's logs;
 *  - errors: one BffError with error_code, error_msg, request_id, retry_after;
 *  - retries: 429, 503 and 409 BFF.REQUEST_IN_PROGRESS are retried after Retry-After (or a short
 *    backoff) only on calls that are safe to repeat: wechat/session and login (a fresh wx.login
 *    code each time), refresh, GET /session, logout, captcha. Never a bind, a register, a
 *    phone-number login (its code is single-use) or a code send (it costs an SMS);
 *  - a request timeout (40 s) above bff's worst case, and after a lost answer to a sign-in call
 *    (timeout, network), GET /session tells whether it went through before anything is retried.
 */
'use strict';

/** @typedef {import('./bff-client').BffClientOptions} BffClientOptionsT */
/** @typedef {import('./bff-client').BffClient} BffClientApi */
/** @typedef {import('./bff-client').Outcome} OutcomeT */
/** @typedef {import('./bff-client').NextStep} NextStepResult */
/** @typedef {import('./bff-client').RouteName} RouteNameT */
/** @typedef {import('./bff-client').RequestOptions} RequestOptionsT */
/** @typedef {import('./bff-client').RequestResult} RequestResultT */
/** @typedef {import('./bff-client').WxLike} WxLikeT */
/** @typedef {import('./bff-client').StorageLike} StorageLikeT */
/** @typedef {{ [key: string]: unknown }} Json */
/**
 * A route of bff's API. `repeatable`: safe to send again after 409/429/503 (it spends nothing
 * single-use, or gets a fresh wx.login code per attempt). `outcome`: answers a login outcome.
 * @typedef {{ method: 'GET' | 'POST' | 'DELETE', path: string, auth: boolean,
 *             repeatable: boolean, outcome: boolean }} Route
 */

const VERSION = '0.1.0';

/**
 * bff's worst case for one call is about 22 s: the per-openid lock wait (about 1 s) + the
 * IDaaS call (one deadline of connect + read, 2 + 8 s) + a JWKS fetch to verify the id_token
 * (2 + 8 s) + a few Redis calls, with the default IDAAS_*_TIMEOUT_S. A client that gives up earlier can miss a bind that went
 * through. 40 s leaves room for the gateway and the phone's network.
 */
const DEFAULT_TIMEOUT_MS = 40000;
/** Our own timer beyond `timeoutMs`, for a request implementation that never calls back. */
const GUARD_MS = 2000;
const API_PREFIX = '/api/v1';

/** @param {string} method @param {string} path @param {Partial<Route>} [flags] @returns {Route} */
function route(method, path, flags) {
  const r = /** @type {Route} */ ({ method, path, auth: true, repeatable: false, outcome: false });
  return Object.assign(r, flags || {});
}

const ROUTES = {
  wechatSession: route('POST', '/wechat/session', { auth: false, repeatable: true }),
  login: route('POST', '/login', { repeatable: true, outcome: true }),
  loginPhone: route('POST', '/login/phone', { outcome: true }),
  bindPassword: route('POST', '/bind/username-password', { outcome: true }),
  bindWechatPhone: route('POST', '/bind/wechat-phone', { outcome: true }),
  bindCode: route('POST', '/bind/verification-code', { outcome: true }),
  registerWechatPhone: route('POST', '/register/wechat-phone', { outcome: true }),
  registerCode: route('POST', '/register/verification-code', { outcome: true }),
  captcha: route('GET', '/captcha', { repeatable: true }),
  sendCode: route('POST', '/verification-codes'),
  refresh: route('POST', '/session/refresh', { repeatable: true }),
  session: route('GET', '/session', { repeatable: true }),
  logout: route('DELETE', '/session', { repeatable: true }),
};

// ----------------------------------------------------------------------------------- errors

/** @param {string} actual @param {string} code */
function codeMatches(actual, code) {
  // IDaaS codes differ by tenant: IDAAS.SDK.LOGIN.1005 (CIAM) and SDK.LOGIN.1005 (EIAM).
  return actual === code || (actual.length > code.length && actual.endsWith('.' + code));
}

/**
 * The one error of this module: bff's error envelope (or a CLIENT.* code when no answer came).
 * Branch on `error_code` (or `is(code)`), never on `error_msg`.
 */
class BffError extends Error {
  /**
   * @param {{ error_code: string, error_msg?: string, request_id?: string, status?: number,
   *           retry_after?: number | null, errors?: { [field: string]: unknown } }} fields
   */
  constructor(fields) {
    super(fields.error_msg || fields.error_code);
    // A transpiled `class extends Error` (the IDE's ES5 output) loses the prototype: restore it.
    Object.setPrototypeOf(this, BffError.prototype);
    this.name = 'BffError';
    this.error_code = fields.error_code;
    this.error_msg = fields.error_msg || '';
    this.request_id = fields.request_id || '';
    this.retry_after = typeof fields.retry_after === 'number' ? fields.retry_after : null;
    this.status = fields.status || 0;
    /** @type {{ [field: string]: unknown } | undefined} */
    this.errors = fields.errors;
    /** @type {boolean | undefined} */
    this.session_active = undefined;
  }

  /** @param {string} code */
  is(code) {
    return codeMatches(this.error_code, code);
  }
}

/** @param {unknown} err @param {string} code */
function isCode(err, code) {
  return err instanceof BffError && err.is(code);
}

/** @param {string} code @param {string} message @param {string} [requestId] */
function clientError(code, message, requestId) {
  return new BffError({ error_code: code, error_msg: message, request_id: requestId });
}

// ----------------------------------------------------------------------------------- helpers

/** @param {unknown} value @returns {Json | null} */
function asRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? /** @type {Json} */ (value)
    : null;
}

/** wx.request parses JSON when it can; an HTML 502 from a proxy stays text. @param {unknown} data */
function parseBody(data) {
  if (typeof data !== 'string') return data;
  if (data === '') return null;
  try {
    return JSON.parse(data);
  } catch (e) {
    return data;
  }
}

/** Case-insensitive header lookup (wx keeps the server's spelling). @param {unknown} headers @param {string} name */
function headerValue(headers, name) {
  const all = asRecord(headers);
  if (!all) return undefined;
  const wanted = name.toLowerCase();
  const key = Object.keys(all).find((k) => k.toLowerCase() === wanted);
  if (key === undefined) return undefined;
  const value = all[key];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** `Retry-After`: seconds (or an HTTP date). @param {string | undefined} value @param {number} nowMs */
function parseRetryAfter(value, nowMs) {
  if (value === undefined || value.trim() === '') return null;
  const seconds = Number(value);
  if (isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return isNaN(at) ? null : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** @param {number} bytes */
function randomHex(bytes) {
  let out = '';
  for (let i = 0; i < bytes; i++) out += ('0' + Math.floor(Math.random() * 256).toString(16)).slice(-2);
  return out;
}

/** Header values: printable ASCII, at most 512 characters (bff refuses anything else). */
function headerSafe(/** @type {unknown} */ value, /** @type {string} */ fallback) {
  const text = value === undefined || value === null ? '' : String(value);
  const clean = text
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 512);
  return clean || fallback;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The claims of a JWT, unverified: only to read `exp`/`iat` (bff verified it). @param {string} jwt */
function jwtClaims(jwt) {
  const part = jwt.split('.')[1] || '';
  let acc = 0;
  let bits = 0;
  let escaped = '';
  for (let i = 0; i < part.length; i++) {
    const v = B64URL.indexOf(part[i]);
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      escaped += '%' + ('0' + ((acc >> bits) & 0xff).toString(16)).slice(-2);
    }
  }
  try {
    return asRecord(JSON.parse(decodeURIComponent(escaped))); // UTF-8 bytes → text
  } catch (e) {
    return null;
  }
}

/** Seconds an id_token lives from now, by its own claims (exp - iat: immune to a wrong device clock). */
function idTokenLifetimeS(/** @type {string} */ jwt, /** @type {number} */ nowMs) {
  const claims = jwtClaims(jwt);
  const exp = claims && claims.exp;
  const iat = claims && claims.iat;
  if (typeof exp !== 'number') return 0; // unreadable: refresh on next use
  if (typeof iat === 'number' && exp > iat) return exp - iat;
  return Math.max(0, exp - nowMs / 1000);
}

/** @returns {WxLikeT | undefined} */
function globalWx() {
  return typeof wx === 'object' && wx !== null ? wx : undefined;
}

// ----------------------------------------------------------------------------------- outcomes

const BIND_ROUTES = {
  phone: /** @type {RouteNameT[]} */ (['bind/wechat-phone', 'bind/verification-code:sms']),
  email: /** @type {RouteNameT[]} */ (['bind/verification-code:email']),
  password: /** @type {RouteNameT[]} */ (['bind/username-password']),
};
const REGISTER_ROUTES = {
  phone: /** @type {RouteNameT[]} */ (['register/wechat-phone', 'register/verification-code:sms']),
  email: /** @type {RouteNameT[]} */ (['register/verification-code:email']),
};

/**
 * What the UI does with a login or bind outcome: SIGNED_IN (go on; PASSWORD_WARN too, with a
 * banner), BIND / BIND_OR_REGISTER (a screen offering `routes`, best first, following the
 * tenant's `flows`), or BLOCKED (MFA_AUTH, ACCESS_DENIED, PASSWORD_EXPIRED, anything unknown:
 * a message naming the status, no automatic retry).
 * @param {{ status: string, flows?: string[] }} outcome
 * @returns {NextStepResult}
 */
function nextStep(outcome) {
  const status = outcome.status;
  const flows = outcome.flows || [];
  if (status === 'SUCCESS' || status === 'PASSWORD_WARN') {
    return { step: 'SIGNED_IN', status, routes: [] };
  }
  if (status !== 'SOCIAL_BIND' && status !== 'USER_REGISTER') {
    return { step: 'BLOCKED', status, routes: [] };
  }
  const phone = flows.indexOf('VERIFY_PHONE') >= 0;
  const email = flows.indexOf('VERIFY_EMAIL') >= 0;
  /** @type {('phone' | 'email' | 'password')[]} */
  let order = ['password', 'phone', 'email']; // no hint: the password form first
  if (phone) order = ['phone', 'password', 'email'];
  else if (email) order = ['email', 'password', 'phone'];
  /** @type {RouteNameT[]} */
  const routes = [];
  order.forEach((kind) => routes.push.apply(routes, BIND_ROUTES[kind]));
  if (status === 'USER_REGISTER') {
    order.forEach((kind) => {
      if (kind !== 'password') routes.push.apply(routes, REGISTER_ROUTES[kind]);
    });
  }
  return { step: status === 'SOCIAL_BIND' ? 'BIND' : 'BIND_OR_REGISTER', status, routes };
}

// ----------------------------------------------------------------------------------- the client

/**
 * @param {BffClientOptionsT} options
 * @returns {BffClientApi}
 */
function createBffClient(options) {
  if (!options || typeof options.baseUrl !== 'string' || !/^https?:\/\/[^/]/.test(options.baseUrl)) {
    throw new TypeError('createBffClient: baseUrl must be an http(s) URL, e.g. https://api.example.com');
  }
  const baseUrl = options.baseUrl.replace(/\/+$/, '') + API_PREFIX;
  const wxApi = options.wx || globalWx();
  const w = wxApi || {};
  // Looked up on each call, not bound once: a page (or a test) may wrap wx.request later.
  /** @type {import('./bff-client').RequestFunction | undefined} */
  const requestFn =
    options.request ||
    (w.request
      ? (o) => /** @type {import('./bff-client').RequestFunction} */ (w.request).call(w, o)
      : undefined);
  /** @type {import('./bff-client').LoginFunction | undefined} */
  const loginFn =
    options.login ||
    (w.login ? (o) => /** @type {import('./bff-client').LoginFunction} */ (w.login).call(w, o) : undefined);
  const storageOpt = options.storage || (w.getStorageSync && w.setStorageSync ? w : undefined);
  if (!requestFn || !loginFn || !storageOpt) {
    const missing = [!requestFn && 'request', !loginFn && 'login', !storageOpt && 'storage'];
    throw new TypeError(
      'createBffClient: no wx here; pass ' + missing.filter(Boolean).join(', ') + ' explicitly',
    );
  }
  const request = requestFn;
  const wxLoginFn = loginFn;
  const storage = /** @type {StorageLikeT} */ (storageOpt);
  const useHandles = options.handles !== false;
  const timeoutMs = options.timeoutMs || DEFAULT_TIMEOUT_MS;
  const refreshMarginS = typeof options.refreshMarginS === 'number' ? options.refreshMarginS : 60;
  const retryOpts = options.retry || {};
  const retry = {
    attempts: typeof retryOpts.attempts === 'number' ? retryOpts.attempts : 2,
    baseDelayMs: typeof retryOpts.baseDelayMs === 'number' ? retryOpts.baseDelayMs : 500,
    maxDelayMs: typeof retryOpts.maxDelayMs === 'number' ? retryOpts.maxDelayMs : 5000,
  };
  const now = options.now || Date.now;
  const sleep =
    options.sleep ||
    ((/** @type {number} */ ms) => new Promise((resolve) => setTimeout(() => resolve(undefined), ms)));
  const prefix = options.storagePrefix || 'bff';
  const K_HANDLE = prefix + '.handle';
  const K_FINGERPRINT = prefix + '.fingerprint';

  // ------------------------------------------------------------------ storage (handle, fingerprint)

  /** @param {string} key */
  function readStored(key) {
    try {
      const value = storage.getStorageSync(key);
      return typeof value === 'string' && value ? value : null;
    } catch (e) {
      return null;
    }
  }

  /** @param {string} key @param {string} value */
  function writeStored(key, value) {
    try {
      storage.setStorageSync(key, value);
    } catch (e) {
      // Storage full or unavailable: the value serves this call only; the next one asks again.
    }
  }

  /** @param {string} key */
  function removeStored(key) {
    try {
      if (typeof storage.removeStorageSync === 'function') storage.removeStorageSync(key);
      else storage.setStorageSync(key, '');
    } catch (e) {
      // nothing to clean up then
    }
  }

  // ------------------------------------------------------------------ device headers

  /** @type {{ [name: string]: string } | null} */
  let device = null;

  /** X-operating-sys-version, X-device-fingerprint, X-agent, X-L: read once, sent on every call. */
  function deviceHeaders() {
    if (device) return device;
    /** @template T @param {(() => T) | undefined} read @returns {Partial<T>} */
    const safely = (read) => {
      try {
        return (read && read()) || {};
      } catch (e) {
        return {};
      }
    };
    // wx.getDeviceInfo / wx.getAppBaseInfo (base library 2.20.1+), else the deprecated all-in-one.
    const info = safely(w.getDeviceInfo && w.getDeviceInfo.bind(w));
    const app = safely(w.getAppBaseInfo && w.getAppBaseInfo.bind(w));
    const incomplete = !info.platform || !info.system || !app.language || !app.version;
    const legacy = incomplete ? safely(w.getSystemInfoSync && w.getSystemInfoSync.bind(w)) : {};
    const platform = info.platform || legacy.platform;
    const system = info.system || legacy.system;
    const language = options.language || app.language || legacy.language || '';
    const wechat = app.version || legacy.version;
    const base = app.SDKVersion || legacy.SDKVersion;
    let fingerprint = readStored(K_FINGERPRINT);
    if (!fingerprint) {
      // An identifier, not a secret; kept stable: the IDaaS expects the same one on every call.
      fingerprint = randomHex(16);
      writeStored(K_FINGERPRINT, fingerprint);
    }
    let agent = options.agent || 'bff-client/' + VERSION;
    if (wechat) agent += ' WeChat/' + wechat;
    if (base) agent += ' base/' + base;
    device = {
      'X-operating-sys-version': headerSafe([platform, system].filter(Boolean).join(' '), 'unknown'),
      'X-device-fingerprint': fingerprint,
      'X-agent': headerSafe(agent, 'bff-client'),
      'X-L': options.language ? headerSafe(options.language, 'en') : /^zh/i.test(language) ? 'zh' : 'en',
    };
    return device;
  }

  // ------------------------------------------------------------------ one HTTP exchange

  /**
   * Send one request. Resolves with the parsed 2xx body (null when empty); rejects with a
   * BffError: bff's envelope, `HTTP.<status>` for a foreign error page, or CLIENT.TIMEOUT /
   * CLIENT.NETWORK when no answer came.
   * @param {Route} r @param {Json | undefined} body @param {string | null} handle
   * @returns {Promise<unknown>}
   */
  function send(r, body, handle) {
    const requestId = 'mp-' + now().toString(36) + '-' + randomHex(6);
    /** @type {{ [name: string]: string }} */
    const header = Object.assign({}, deviceHeaders(), { 'X-Request-ID': requestId });
    if (handle) header.Authorization = 'Bearer ' + handle;
    if (body !== undefined) header['Content-Type'] = 'application/json';
    return new Promise((resolve, reject) => {
      let done = false;
      /** @type {unknown} */
      let task = null;
      const finish = (/** @type {BffError | null} */ err, /** @type {unknown} */ value) => {
        if (done) return;
        done = true;
        clearTimeout(guard);
        if (err) reject(err);
        else resolve(value);
      };
      const guard = setTimeout(() => {
        const t = asRecord(task);
        if (t && typeof t.abort === 'function') t.abort();
        finish(clientError('CLIENT.TIMEOUT', 'no answer in time', requestId), null);
      }, timeoutMs + GUARD_MS);
      /** @type {RequestOptionsT} */
      const req = {
        url: baseUrl + r.path,
        method: r.method,
        header,
        dataType: 'json',
        timeout: timeoutMs,
        success: (res) => {
          if (res.statusCode >= 200 && res.statusCode < 300) finish(null, parseBody(res.data));
          else finish(errorFromAnswer(res, requestId), null);
        },
        fail: (e) => {
          const msg = (e && e.errMsg) || 'request failed';
          finish(
            clientError(/timeout/i.test(msg) ? 'CLIENT.TIMEOUT' : 'CLIENT.NETWORK', msg, requestId),
            null,
          );
        },
      };
      if (body !== undefined) req.data = body;
      try {
        task = request(req);
      } catch (e) {
        finish(clientError('CLIENT.NETWORK', String(e), requestId), null);
      }
    });
  }

  /** @param {RequestResultT} res @param {string} requestId */
  function errorFromAnswer(res, requestId) {
    const body = asRecord(parseBody(res.data));
    const envelope = body && typeof body.error_code === 'string' ? body : null;
    const field = (/** @type {string} */ name) => {
      const v = envelope && envelope[name];
      return typeof v === 'string' ? v : '';
    };
    return new BffError({
      error_code: envelope ? field('error_code') : 'HTTP.' + res.statusCode,
      error_msg: field('error_msg'),
      request_id: field('request_id') || headerValue(res.header, 'X-Request-ID') || requestId,
      status: res.statusCode,
      retry_after: parseRetryAfter(headerValue(res.header, 'Retry-After'), now()),
      errors: (envelope && asRecord(envelope.errors)) || undefined,
    });
  }

  // ------------------------------------------------------------------ retries

  /**
   * How long to wait before sending a repeatable call again, or null to give up now.
   * @param {unknown} err @param {number} retries (retries already made)
   */
  function retryDelay(err, retries) {
    if (!(err instanceof BffError) || retries >= retry.attempts) return null;
    let delay;
    if (err.error_code === 'BFF.RATE_LIMITED') {
      if (err.retry_after === null) return null; // no hint: don't guess, let the UI decide
      delay = err.retry_after * 1000;
    } else if (err.error_code === 'BFF.REQUEST_IN_PROGRESS') {
      // Another call of this WeChat user holds its lock (a double tap, a second device).
      delay = err.retry_after !== null ? err.retry_after * 1000 : 1000;
    } else if (
      err.status === 503 &&
      (err.error_code === 'BFF.UPSTREAM_UNAVAILABLE' || err.error_code === 'BFF.SESSION_STORE_UNAVAILABLE')
    ) {
      delay =
        err.retry_after !== null
          ? err.retry_after * 1000
          : Math.min(retry.baseDelayMs * Math.pow(2, retries), retry.maxDelayMs);
    } else {
      return null;
    }
    if (delay > retry.maxDelayMs) return null; // a long wait is the user's: show a countdown
    return delay + Math.floor(Math.random() * Math.min(250, delay / 4 + 1)); // spread the phones
  }

  // ------------------------------------------------------------------ the handle

  /** @type {Promise<string> | null} */
  let handleInFlight = null;

  /** wx.login → POST /wechat/session; a refused code (used, expired) gets one fresh try. */
  async function openWechatSession() {
    for (let codeRetried = false; ; codeRetried = true) {
      try {
        const answer = asRecord(
          await perform(ROUTES.wechatSession, async () => ({ wx_code: await wxLoginCode() })),
        );
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

  /** One wechat/session call at a time, whoever asks; the handle goes to storage only. */
  function obtainHandle() {
    if (!handleInFlight) {
      handleInFlight = openWechatSession().then(
        (handle) => {
          writeStored(K_HANDLE, handle);
          handleInFlight = null;
          return handle;
        },
        (err) => {
          handleInFlight = null;
          throw err;
        },
      );
    }
    return handleInFlight;
  }

  /** @returns {Promise<string>} */
  function ensureHandle() {
    if (handleInFlight) return handleInFlight;
    const stored = readStored(K_HANDLE);
    return stored ? Promise.resolve(stored) : obtainHandle();
  }

  /** After a 401 with `stale`: a new handle, unless another call already got one. @param {string} stale */
  function renewHandle(stale) {
    if (handleInFlight) return handleInFlight;
    const stored = readStored(K_HANDLE);
    if (stored && stored !== stale) return Promise.resolve(stored);
    removeStored(K_HANDLE);
    return obtainHandle();
  }

  /** @returns {Promise<string>} */
  function wxLoginCode() {
    return new Promise((resolve, reject) => {
      const fail = (/** @type {string} */ msg) => reject(clientError('CLIENT.WX_LOGIN', msg));
      try {
        wxLoginFn({
          success: (res) => (res && res.code ? resolve(res.code) : fail('wx.login gave no code')),
          fail: (e) => fail((e && e.errMsg) || 'wx.login failed'),
        });
      } catch (e) {
        fail(String(e));
      }
    });
  }

  // ------------------------------------------------------------------ one call, with its policies

  /**
   * A call of `r`: the handle (renewed once on 401: nothing reached the IDaaS then), then the
   * retry policy for repeatable routes. `makeBody` runs per attempt (a fresh wx.login code each).
   * @param {Route} r @param {(() => Json | Promise<Json>) | undefined} [makeBody]
   * @returns {Promise<unknown>}
   */
  async function perform(r, makeBody) {
    let handle = r.auth && useHandles ? await ensureHandle() : null;
    let renewed = false;
    let retries = 0;
    for (;;) {
      const body = makeBody ? await makeBody() : undefined;
      try {
        return await send(r, body, handle);
      } catch (err) {
        if (handle && !renewed && isCode(err, 'BFF.UNAUTHENTICATED')) {
          renewed = true;
          handle = await renewHandle(handle);
          continue;
        }
        const delay = r.repeatable ? retryDelay(err, retries) : null;
        if (delay === null) throw err;
        retries += 1;
        await sleep(delay);
      }
    }
  }

  // ------------------------------------------------------------------ the id_token (memory only)

  /** @type {string | null} */
  let idToken = null;
  let idTokenDueAt = 0; // device clock, ms: refresh from then on
  /** @type {Promise<import('./bff-client').RefreshResponse> | null} */
  let refreshInFlight = null;
  let epoch = 0; // bumped by logout: answers to calls started before it are not kept

  /** @param {string} token @param {number | null} expiresInS (null: read the token's claims) */
  function keepIdToken(token, expiresInS) {
    const lifetime = expiresInS !== null ? expiresInS : idTokenLifetimeS(token, now());
    const margin = Math.min(refreshMarginS, lifetime / 2);
    idToken = token;
    idTokenDueAt = now() + Math.max(0, lifetime - margin) * 1000;
  }

  function forgetIdToken() {
    idToken = null;
    idTokenDueAt = 0;
  }

  /** A login or bind answer: keep the id_token it brought, trim the rest. @param {unknown} data @param {number} startedAt */
  function acceptOutcome(data, startedAt) {
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
    if (startedAt !== epoch) return out; // logged out meanwhile: keep nothing
    if (typeof body.id_token === 'string' && body.id_token) {
      out.id_token = body.id_token;
      keepIdToken(body.id_token, null);
    } else {
      forgetIdToken(); // a new answer supersedes the old one
    }
    return out;
  }

  /**
   * The answer to a sign-in call was lost (timeout, network). It may have gone through (bff
   * finished after the phone gave up): GET /session says whether the user is now signed in.
   * @param {BffError} err @returns {Promise<OutcomeT>}
   */
  async function recoverLostAnswer(err) {
    let status;
    try {
      status = await sessionStatus();
    } catch (e) {
      throw err; // can't tell: session_active stays undefined
    }
    err.session_active = status.active;
    if (!status.active) throw err;
    forgetIdToken(); // none came with it; getIdToken() refreshes
    /** @type {OutcomeT} */
    const out = { status: 'SUCCESS', flows: [], recovered: true };
    if (typeof status.expires_in === 'number') out.expire = status.expires_in;
    return out;
  }

  /** @param {Route} r @param {() => Json | Promise<Json>} makeBody */
  async function signIn(r, makeBody) {
    const startedAt = epoch;
    let data;
    try {
      data = await perform(r, makeBody);
    } catch (err) {
      if (isCode(err, 'CLIENT.TIMEOUT') || isCode(err, 'CLIENT.NETWORK')) {
        return recoverLostAnswer(/** @type {BffError} */ (err));
      }
      throw err;
    }
    return acceptOutcome(data, startedAt);
  }

  // ------------------------------------------------------------------ the methods

  function refresh() {
    if (!refreshInFlight) {
      const startedAt = epoch;
      refreshInFlight = perform(ROUTES.refresh).then(
        (data) => {
          refreshInFlight = null;
          const body = asRecord(data);
          const token = body && body.id_token;
          const expiresIn = body && body.expires_in;
          if (typeof token !== 'string' || !token || typeof expiresIn !== 'number') {
            throw clientError('CLIENT.BAD_RESPONSE', 'refresh answered no id_token');
          }
          if (startedAt === epoch) keepIdToken(token, expiresIn);
          return { id_token: token, expires_in: expiresIn };
        },
        (err) => {
          refreshInFlight = null;
          if (isCode(err, 'BFF.SESSION_EXPIRED')) forgetIdToken(); // sign in again
          throw err;
        },
      );
    }
    return refreshInFlight;
  }

  async function getIdToken() {
    if (idToken && now() < idTokenDueAt) return idToken;
    return (await refresh()).id_token;
  }

  async function sessionStatus() {
    const body = asRecord(await perform(ROUTES.session));
    if (!body || typeof body.active !== 'boolean') {
      throw clientError('CLIENT.BAD_RESPONSE', 'session answered no "active"');
    }
    /** @type {import('./bff-client').SessionStatusResponse} */
    const out = { active: body.active };
    if (typeof body.expires_in === 'number') out.expires_in = body.expires_in;
    return out;
  }

  async function logout() {
    epoch += 1;
    forgetIdToken();
    try {
      await perform(ROUTES.logout);
    } finally {
      removeStored(K_HANDLE); // bff deleted it (or it is unusable anyway)
    }
  }

  /** @param {{ mobile?: string, email?: string }} destination @param {string} verifyCode */
  function codeBody(destination, verifyCode) {
    /** @type {Json} */
    const body = { verify_code: verifyCode };
    if (destination && destination.mobile !== undefined) body.mobile = destination.mobile;
    if (destination && destination.email !== undefined) body.email = destination.email;
    return body;
  }

  return {
    login: () => signIn(ROUTES.login, async () => ({ code: await wxLoginCode() })),
    loginWithPhone: (phoneCode) => signIn(ROUTES.loginPhone, () => ({ phone_code: phoneCode })),
    bindWithPassword: (userName, password) =>
      signIn(ROUTES.bindPassword, () => ({ user_name: userName, password })),
    bindWithWechatPhone: (phoneCode) => signIn(ROUTES.bindWechatPhone, () => ({ phone_code: phoneCode })),
    bindWithCode: (destination, verifyCode) =>
      signIn(ROUTES.bindCode, () => codeBody(destination, verifyCode)),
    registerWithWechatPhone: (phoneCode) =>
      signIn(ROUTES.registerWechatPhone, () => ({ phone_code: phoneCode })),
    registerWithCode: (destination, verifyCode) =>
      signIn(ROUTES.registerCode, () => codeBody(destination, verifyCode)),
    getCaptcha: async () => {
      const body = asRecord(await perform(ROUTES.captcha));
      if (!body || typeof body.token !== 'string') {
        throw clientError('CLIENT.BAD_RESPONSE', 'captcha answered no token');
      }
      return /** @type {import('./bff-client').CaptchaResponse} */ (/** @type {unknown} */ (body));
    },
    sendCode: async (request) => {
      await perform(ROUTES.sendCode, () => ({
        channel: request.channel,
        to: request.to,
        purpose: request.purpose,
        captcha: { token: request.captcha.token, point_json: request.captcha.point_json },
      }));
    },
    refresh,
    getIdToken,
    sessionStatus,
    logout,
  };
}

/** @type {typeof import('./bff-client')} */
const api = { createBffClient, BffError, isCode, nextStep, DEFAULT_TIMEOUT_MS, VERSION };
module.exports = api;
