'use strict';
// A fake `wx` for the unit tests: in-memory storage, wx.login codes, and wx.request answered by
// a small fake bff (handles, outcomes, refresh, session, the sessions of the devices, the next
// steps of a login: MFA and the password steps, the WeChat unbind) whose routes a test can
// override.
const crypto = require('node:crypto');

/** base64url of a JSON value. */
function b64url(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsigned JWT with the given claims (the client only reads exp/iat). */
function fakeJwt(claims) {
  return `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims)}.c2ln`;
}

function envelope(status, code, extra = {}) {
  const requestId = extra.request_id || `srv-${Math.random().toString(36).slice(2, 10)}`;
  return {
    status,
    body: {
      error_code: code,
      error_msg: extra.error_msg || code.toLowerCase(),
      request_id: requestId,
      ...extra.body,
    },
    headers: { 'X-Request-ID': requestId, ...(extra.headers || {}) },
  };
}

/** A handle's public session id, 16 hex digits (bff derives it from the handle's digest). */
function sessionId(handle) {
  return crypto.createHash('sha256').update(`session-id:${handle}`).digest('hex').slice(0, 16);
}

/** The route key a request matches: exact, else one with `{param}` segments (`DELETE /sessions/{id}`). */
function routeFor(routes, method, path) {
  if (routes[`${method} ${path}`]) return routes[`${method} ${path}`];
  const key = Object.keys(routes).find((k) => {
    const [m, p] = k.split(' ');
    if (m !== method || !p.includes('{')) return false;
    return new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(path);
  });
  return key ? routes[key] : undefined;
}

/**
 * createFakeWx({ clock }) → { wx, storage, calls, routes, ... }
 *  - routes['POST /login'] = (req, fake) => answer | Promise<answer>; an answer is
 *    { status, body?, headers? }, or { fail: 'request:fail timeout' } (wx's fail callback), or
 *    { hang: true } (never calls back).
 *  - calls: every request as { method, path, header, data }.
 *  - handles: the live handles; revoked: the handles ended on purpose (401 BFF.SESSION_REVOKED);
 *    fake.revoke(handle) ends one as another device (or an operator) would.
 *  - step: the pending next step ('MFA_AUTH', 'PASSWORD_WARN', 'PASSWORD_EXPIRED' or null; set
 *    by a test): the MFA and password routes answer 409 BFF.NO_PENDING_STEP for any other;
 *    mfaCode, password (the old one) and policy are what they check; unbound counts unbinds.
 */
function createFakeWx(opts = {}) {
  const clock = opts.clock || { now: () => Date.now() };
  const storage = new Map();
  const calls = [];
  const codes = new Set();
  const handles = new Set();
  const revoked = new Set();
  let codeCount = 0;
  let handleCount = 0;
  let tokenCount = 0;

  const fake = {
    storage,
    calls,
    handles,
    revoked,
    sessionId,
    loginCalls: 0,
    idTokenTtlS: 300,
    outcome: null, // login/bind answer override (default SUCCESS)
    step: null,
    mfaCode: '123456',
    password: 'old-secret-1',
    policy: { min_length: 8, max_length: 20, pattern: '^(?=.*[A-Za-z])(?=.*\\d).+$' },
    unbound: 0,
    /** Requests to a route, e.g. count('POST /wechat/session'). */
    count(route) {
      return calls.filter((c) => `${c.method} ${c.path}` === route).length;
    },
    idToken() {
      tokenCount += 1;
      const iat = Math.floor(clock.now() / 1000);
      return fakeJwt({ sub: 'alice', iat, exp: iat + fake.idTokenTtlS, n: tokenCount });
    },
    success() {
      return { status: 200, body: { status: 'SUCCESS', expire: 432000, id_token: fake.idToken() } };
    },
    envelope,
    routes: {},
    revoke(handle) {
      handles.delete(handle);
      revoked.add(handle);
    },
    /** The handle a request carries ('' when none). */
    handleOf(req) {
      return (req.header.Authorization || '').replace(/^Bearer /, '');
    },
  };

  const authed = (fn) => (req) => {
    const handle = fake.handleOf(req);
    if (revoked.has(handle)) return envelope(401, 'BFF.SESSION_REVOKED');
    if (!handles.has(handle)) return envelope(401, 'BFF.UNAUTHENTICATED');
    return fn(req);
  };

  /** A route of the step(s) `steps`: 409 BFF.NO_PENDING_STEP unless one of them is pending. */
  const onStep = (steps, fn) =>
    authed((req) => (steps.includes(fake.step) ? fn(req) : envelope(409, 'BFF.NO_PENDING_STEP')));
  /** The step finished: SUCCESS. */
  const finish = () => {
    fake.step = null;
    return fake.success();
  };
  const meetsPolicy = (p, pw) =>
    (p.min_length === undefined || [...pw].length >= p.min_length) &&
    (p.max_length === undefined || [...pw].length <= p.max_length) &&
    (p.pattern === undefined || new RegExp(p.pattern).test(pw));

  Object.assign(fake.routes, {
    'GET /mfa': onStep(['MFA_AUTH'], () => ({
      status: 200,
      body: { factor: 'sms', destination: '+86-152****7124' },
    })),
    'POST /mfa/codes': onStep(['MFA_AUTH'], () => ({ status: 204, body: '' })),
    'POST /mfa/verify': onStep(['MFA_AUTH'], (req) =>
      req.data.verify_code === fake.mfaCode ? finish() : envelope(400, 'IDAAS.SDK.SMS.1003'),
    ),
    'POST /password/skip': onStep(['PASSWORD_WARN'], finish),
    'POST /password/change': onStep(['PASSWORD_WARN', 'PASSWORD_EXPIRED'], (req) => {
      if (req.data.old_password !== fake.password) return envelope(400, 'IDAAS.SDK.LOGIN.1005');
      if (!meetsPolicy(fake.policy, req.data.new_password)) {
        return envelope(400, 'BFF.PASSWORD_POLICY', {
          body: { errors: { new_password: ['does not meet the password policy'] } },
        });
      }
      fake.password = req.data.new_password;
      return finish();
    }),
    'DELETE /wechat-binding': authed(() => {
      fake.unbound += 1;
      for (const h of [...handles]) fake.revoke(h); // every handle of the user
      return { status: 204, body: '' };
    }),
    'POST /wechat/session': (req) => {
      if (!codes.has(req.data.wx_code)) return envelope(400, 'BFF.WECHAT_CODE_INVALID');
      codes.delete(req.data.wx_code);
      handleCount += 1;
      const handle = `handle-${handleCount}`.padEnd(43, 'x');
      handles.add(handle);
      return { status: 201, body: { handle, expires_in: 604800 } };
    },
    'POST /login': authed((req) => {
      if (!codes.has(req.data.code)) return envelope(400, 'IDAAS.SDK.LOGIN.1009');
      codes.delete(req.data.code);
      return fake.outcome ? { status: 200, body: fake.outcome } : fake.success();
    }),
    'POST /login/phone': authed(() => fake.success()),
    'POST /bind/username-password': authed(() => fake.success()),
    'POST /bind/wechat-phone': authed(() => fake.success()),
    'POST /bind/verification-code': authed(() => fake.success()),
    'POST /register/wechat-phone': authed(() => fake.success()),
    'POST /register/verification-code': authed(() => fake.success()),
    'GET /captcha': authed(() => ({ status: 200, body: { token: 'cap-1', secret_key: 'k' } })),
    'POST /verification-codes': authed(() => ({ status: 204, body: '' })),
    'POST /session/refresh': authed(() => ({
      status: 200,
      body: { id_token: fake.idToken(), expires_in: fake.idTokenTtlS },
    })),
    'GET /session': authed(() => ({ status: 200, body: { active: true, expires_in: 1000 } })),
    'DELETE /session': authed((req) => {
      fake.revoke(fake.handleOf(req));
      return { status: 204, body: '' };
    }),
    'GET /sessions': authed((req) => ({
      status: 200,
      body: {
        sessions: [...handles].map((h, i) => ({
          id: sessionId(h),
          issued_at: 1767225600 + i,
          last_used_at: 1767225600 + i,
          os: 'ios iOS 17.4',
          agent: 'bff-client/0.1.0',
          ip: '203.0.113.0/24',
          current: h === fake.handleOf(req),
        })),
      },
    })),
    'DELETE /sessions/{id}': authed((req) => {
      const id = decodeURIComponent(req.path.split('/').pop());
      const handle = [...handles].find((h) => sessionId(h) === id);
      if (!handle) return envelope(404, 'BFF.NOT_FOUND');
      fake.revoke(handle);
      return { status: 204, body: '' };
    }),
  });

  const wx = {
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => {
      storage.set(key, value);
    },
    removeStorageSync: (key) => {
      storage.delete(key);
    },
    login: ({ success }) => {
      fake.loginCalls += 1;
      codeCount += 1;
      const code = `wx-code-${codeCount}`;
      codes.add(code);
      setImmediate(() => success({ code, errMsg: 'login:ok' }));
    },
    getDeviceInfo: () => ({ platform: 'ios', system: 'iOS 17.4', brand: 'Apple', model: 'iPhone' }),
    getAppBaseInfo: () => ({ language: 'zh_CN', version: '8.0.50', SDKVersion: '3.4.0' }),
    request: (options) => {
      const url = new URL(options.url);
      const path = url.pathname.replace(/^\/api\/v1/, '');
      const req = {
        method: options.method,
        path,
        url: options.url,
        header: { ...options.header },
        data: options.data,
        timeout: options.timeout,
      };
      calls.push(req);
      const handler = routeFor(fake.routes, req.method, path);
      const task = {
        aborted: false,
        abort() {
          task.aborted = true;
        },
      };
      Promise.resolve()
        .then(() => (handler ? handler(req, fake) : envelope(404, 'BFF.NOT_FOUND')))
        .then((answer) => {
          if (answer.hang) return;
          if (answer.fail) {
            options.fail({ errMsg: answer.fail });
            return;
          }
          options.success({
            statusCode: answer.status,
            data: answer.body === undefined ? '' : answer.body,
            header: answer.headers || {},
            errMsg: 'request:ok',
          });
        });
      return task;
    },
  };
  fake.wx = wx;
  return fake;
}

/** A device clock the test moves, and a sleep that records its delays and returns at once. */
function createClock(start = Date.UTC(2026, 0, 1)) {
  const clock = {
    t: start,
    sleeps: [],
    now: () => clock.t,
    advance(ms) {
      clock.t += ms;
    },
    sleep: async (ms) => {
      clock.sleeps.push(ms);
      clock.t += ms;
    },
  };
  return clock;
}

module.exports = { createFakeWx, createClock, fakeJwt, envelope };
