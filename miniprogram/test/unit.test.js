'use strict';
// Unit tests of bff-client.js against a fake wx (test/support/fake-wx.js): no network, no bff.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { createBffClient, BffError, isCode, nextStep, DEFAULT_TIMEOUT_MS } = require('../bff-client');
const { createFakeWx, createClock, fakeJwt } = require('./support/fake-wx');

const BASE = 'https://bff.example.com';

/** A client on a fake wx, with a clock the test controls and no real sleeping. */
function setup(options = {}) {
  const clock = createClock();
  const fake = createFakeWx({ clock });
  const bff = createBffClient({ baseUrl: BASE, wx: fake.wx, now: clock.now, sleep: clock.sleep, ...options });
  return { fake, clock, bff };
}

/** Every value in storage, as one string: what a thief of the device's storage would see. */
function storedText(fake) {
  return JSON.stringify([...fake.storage.entries()]);
}

describe('createBffClient', () => {
  test('needs an http(s) baseUrl', () => {
    assert.throws(() => createBffClient({}), TypeError);
    assert.throws(() => createBffClient({ baseUrl: 'ftp://x' }), /baseUrl/);
  });

  test('without wx, names what must be injected', () => {
    assert.throws(() => createBffClient({ baseUrl: BASE }), /pass request, login, storage explicitly/);
  });

  test('uses the global wx by default', async () => {
    const fake = createFakeWx();
    globalThis.wx = fake.wx;
    try {
      const bff = createBffClient({ baseUrl: `${BASE}/` });
      const out = await bff.login();
      assert.equal(out.status, 'SUCCESS');
      assert.equal(fake.calls[0].url, `${BASE}/api/v1/wechat/session`);
    } finally {
      delete globalThis.wx;
    }
  });

  test('injected request, storage and login win over wx', async () => {
    const fake = createFakeWx();
    const storage = new Map();
    let logins = 0;
    const bff = createBffClient({
      baseUrl: BASE,
      wx: { getDeviceInfo: fake.wx.getDeviceInfo },
      request: fake.wx.request,
      login: (o) => {
        logins += 1;
        return fake.wx.login(o);
      },
      storage: { getStorageSync: (k) => storage.get(k), setStorageSync: (k, v) => storage.set(k, v) },
    });
    await bff.login();
    assert.equal(logins, 2); // one code for wechat/session, a fresh one for login
    assert.match(storage.get('bff.handle'), /^handle-1/);
    assert.equal(fake.storage.size, 0);
  });
});

describe('the handle', () => {
  test('names its mini program once, with the appid option, in wechat/session only', async () => {
    const { fake, bff } = setup({ appid: 'wx-shop' });
    await bff.login();
    assert.deepEqual(fake.calls[0].data, { wx_code: 'wx-code-1', appid: 'wx-shop' });
    assert.deepEqual(fake.calls[1].data, { code: 'wx-code-2' }); // the handle names the app now
  });

  test('obtained on first use, stored under bff.handle, sent as Bearer', async () => {
    const { fake, bff } = setup();
    const out = await bff.login();
    assert.deepEqual(
      fake.calls.map((c) => `${c.method} ${c.path}`),
      ['POST /wechat/session', 'POST /login'],
    );
    assert.deepEqual(fake.calls[0].data, { wx_code: 'wx-code-1' });
    assert.equal(fake.calls[0].header.Authorization, undefined);
    assert.deepEqual(fake.calls[1].data, { code: 'wx-code-2' }); // a fresh code, never reused
    const handle = fake.storage.get('bff.handle');
    assert.equal(fake.calls[1].header.Authorization, `Bearer ${handle}`);
    assert.equal(out.status, 'SUCCESS');
  });

  test('reused by later calls and by a new client on the same storage', async () => {
    const { fake, clock, bff } = setup();
    await bff.login();
    await bff.sessionStatus();
    const again = createBffClient({ baseUrl: BASE, wx: fake.wx, now: clock.now, sleep: clock.sleep });
    await again.sessionStatus();
    assert.equal(fake.count('POST /wechat/session'), 1);
  });

  test('401 BFF.UNAUTHENTICATED: a new handle, once, and the call again', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.handles.clear(); // expired on the server
    const status = await bff.sessionStatus();
    assert.equal(status.active, true);
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.count('GET /session'), 2);
    assert.ok(fake.handles.has(fake.storage.get('bff.handle')));
  });

  test('a bind answered 401 is sent again with the new handle (nothing reached the IDaaS)', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.handles.clear();
    const out = await bff.bindWithPassword('alice', 'pw');
    assert.equal(out.status, 'SUCCESS');
    assert.equal(fake.count('POST /bind/username-password'), 2);
  });

  test('a second 401 right after a new handle is thrown, not looped on', async () => {
    const { fake, bff } = setup();
    fake.routes['GET /session'] = () => fake.envelope(401, 'BFF.UNAUTHENTICATED');
    await assert.rejects(bff.sessionStatus(), (err) => err.error_code === 'BFF.UNAUTHENTICATED');
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.count('GET /session'), 2);
  });

  test('concurrent first calls share one wechat/session', async () => {
    const { fake, bff } = setup();
    await Promise.all([bff.sessionStatus(), bff.sessionStatus(), bff.getCaptcha()]);
    assert.equal(fake.count('POST /wechat/session'), 1);
    assert.equal(fake.loginCalls, 1);
  });

  test('concurrent 401s share one renewal', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    fake.handles.clear();
    const [a, b] = await Promise.all([bff.sessionStatus(), bff.refresh()]);
    assert.equal(a.active, true);
    assert.ok(b.id_token);
    assert.equal(fake.count('POST /wechat/session'), 2); // the first, and one renewal
  });

  test('a 401 that arrives after another call renewed uses that handle', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    fake.handles.clear();
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const plain = fake.routes['GET /captcha'];
    // The captcha call's 401 comes back only after the session call has renewed the handle.
    fake.routes['GET /captcha'] = async (req) => {
      const answer = plain(req);
      await held;
      return answer;
    };
    const captcha = bff.getCaptcha();
    await bff.sessionStatus();
    release();
    await captcha;
    assert.equal(fake.count('POST /wechat/session'), 2);
  });

  test('a refused wx code (BFF.WECHAT_CODE_INVALID) gets one fresh code', async () => {
    const { fake, bff } = setup();
    const plain = fake.routes['POST /wechat/session'];
    let refusals = 1;
    fake.routes['POST /wechat/session'] = (req) =>
      refusals-- > 0 ? fake.envelope(400, 'BFF.WECHAT_CODE_INVALID') : plain(req);
    await bff.sessionStatus();
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.notEqual(fake.calls[0].data.wx_code, fake.calls[1].data.wx_code);
  });

  test('a code refused twice is thrown', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /wechat/session'] = () => fake.envelope(400, 'BFF.WECHAT_CODE_INVALID');
    await assert.rejects(bff.login(), (err) => err.error_code === 'BFF.WECHAT_CODE_INVALID');
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.storage.get('bff.handle'), undefined);
  });

  test('wx.login failing is CLIENT.WX_LOGIN', async () => {
    const { fake, bff } = setup();
    fake.wx.login = ({ fail }) => fail({ errMsg: 'login:fail no network' });
    await assert.rejects(
      bff.login(),
      (err) => err.error_code === 'CLIENT.WX_LOGIN' && /no network/.test(err.error_msg),
    );
  });

  test('storage keys follow storagePrefix', async () => {
    const { fake, bff } = setup({ storagePrefix: 'acme.bff' });
    await bff.sessionStatus();
    assert.deepEqual([...fake.storage.keys()].sort(), ['acme.bff.fingerprint', 'acme.bff.handle']);
  });

  test('a storage that throws costs a new handle per call, not the call', async () => {
    const { fake, bff } = setup();
    fake.wx.setStorageSync = () => {
      throw new Error('storage full');
    };
    assert.equal((await bff.sessionStatus()).active, true);
    assert.equal((await bff.sessionStatus()).active, true);
    assert.equal(fake.count('POST /wechat/session'), 2);
  });

  test('handles: false (gateway mode) sends no handle and never calls wechat/session', async () => {
    const { fake, bff } = setup({ handles: false });
    fake.routes['GET /session'] = (req) => {
      assert.equal(req.header.Authorization, undefined);
      return { status: 200, body: { active: false } };
    };
    assert.deepEqual(await bff.sessionStatus(), { active: false });
    assert.equal(fake.count('POST /wechat/session'), 0);
  });
});

describe('outcomes', () => {
  test('SOCIAL_BIND comes back with its flows; nothing kept', async () => {
    const { fake, bff } = setup();
    fake.outcome = { status: 'SOCIAL_BIND', flows: ['VERIFY_PHONE'] };
    assert.deepEqual(await bff.login(), { status: 'SOCIAL_BIND', flows: ['VERIFY_PHONE'] });
    await bff.getIdToken(); // no token came: from the server, not from memory
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('flows default to [] and unknown statuses pass through', async () => {
    const { fake, bff } = setup();
    fake.outcome = { status: 'MFA_AUTH' };
    assert.deepEqual(await bff.login(), { status: 'MFA_AUTH', flows: [] });
  });

  test('every sign-in route sends its body to its path', async () => {
    const { fake, bff } = setup();
    await bff.loginWithPhone('pc-1');
    await bff.bindWithPassword('alice', 'pw');
    await bff.bindWithWechatPhone('pc-2');
    await bff.bindWithCode({ mobile: '+86-13800000000' }, '111111');
    await bff.registerWithWechatPhone('pc-3');
    await bff.registerWithCode({ email: 'a@example.com' }, '222222');
    const sent = fake.calls.filter((c) => c.method === 'POST' && c.path !== '/wechat/session');
    assert.deepEqual(
      sent.map((c) => [c.path, c.data]),
      [
        ['/login/phone', { phone_code: 'pc-1' }],
        ['/bind/username-password', { user_name: 'alice', password: 'pw' }],
        ['/bind/wechat-phone', { phone_code: 'pc-2' }],
        ['/bind/verification-code', { verify_code: '111111', mobile: '+86-13800000000' }],
        ['/register/wechat-phone', { phone_code: 'pc-3' }],
        ['/register/verification-code', { verify_code: '222222', email: 'a@example.com' }],
      ],
    );
    for (const c of sent) assert.equal(c.header['Content-Type'], 'application/json');
  });

  test('captcha and code sending', async () => {
    const { fake, bff } = setup();
    const cap = await bff.getCaptcha();
    assert.equal(cap.token, 'cap-1');
    const request = {
      channel: 'sms',
      to: '+86-13800000000',
      purpose: 'bind',
      captcha: { token: 'cap-1', point_json: '{"x":1}' },
    };
    assert.equal(await bff.sendCode(request), undefined);
    assert.deepEqual(fake.calls.at(-1).data, request);
    assert.equal(fake.calls.find((c) => c.path === '/captcha').header['Content-Type'], undefined);
  });

  test('a 2xx that is not an outcome is CLIENT.BAD_RESPONSE', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /login'] = () => ({ status: 200, body: '<html>gateway</html>' });
    await assert.rejects(bff.login(), (err) => err.error_code === 'CLIENT.BAD_RESPONSE');
  });
});

describe('the id_token', () => {
  test('kept in memory only: never in storage', async () => {
    const { fake, bff } = setup();
    const out = await bff.login();
    const refreshed = await bff.refresh();
    const text = storedText(fake);
    assert.ok(!text.includes(out.id_token));
    assert.ok(!text.includes(refreshed.id_token));
    assert.ok(!text.includes('eyJ')); // no JWT at all
  });

  test('getIdToken: the one in memory until shortly before it expires, then one refresh', async () => {
    const { fake, clock, bff } = setup();
    const out = await bff.login();
    assert.equal(await bff.getIdToken(), out.id_token);
    clock.advance(239 * 1000); // 300 s token, refreshed 60 s early
    assert.equal(await bff.getIdToken(), out.id_token);
    assert.equal(fake.count('POST /session/refresh'), 0);
    clock.advance(1000);
    const next = await bff.getIdToken();
    assert.notEqual(next, out.id_token);
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('short tokens refresh at half their life; a wrong device clock does not matter', async () => {
    const { fake, clock, bff } = setup();
    // The phone's clock is an hour behind the IdP's: exp - iat still gives the lifetime.
    const iat = Math.floor(clock.now() / 1000) + 3600;
    const first = fakeJwt({ iat, exp: iat + 60 });
    fake.outcome = { status: 'SUCCESS', expire: 100, id_token: first };
    await bff.login();
    clock.advance(29 * 1000);
    assert.equal(await bff.getIdToken(), first);
    clock.advance(1000);
    assert.notEqual(await bff.getIdToken(), first);
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('refreshMarginS moves the refresh', async () => {
    const { fake, clock, bff } = setup({ refreshMarginS: 10 });
    const out = await bff.login();
    clock.advance(289 * 1000);
    assert.equal(await bff.getIdToken(), out.id_token);
    clock.advance(1000);
    await bff.getIdToken();
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('an unreadable token is refreshed on first use', async () => {
    const { fake, bff } = setup();
    fake.outcome = { status: 'SUCCESS', expire: 100, id_token: 'not-a-jwt' };
    await bff.login();
    await bff.getIdToken();
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('cold start: getIdToken refreshes from the server session', async () => {
    const { fake, bff } = setup();
    const token = await bff.getIdToken();
    assert.ok(token);
    assert.deepEqual(
      fake.calls.map((c) => c.path),
      ['/wechat/session', '/session/refresh'],
    );
  });

  test('concurrent getIdToken calls share one refresh', async () => {
    const { fake, bff } = setup();
    const tokens = await Promise.all([
      bff.getIdToken(),
      bff.getIdToken(),
      bff.refresh().then((r) => r.id_token),
    ]);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('BFF.SESSION_EXPIRED forgets the token and says sign in again', async () => {
    const { fake, clock, bff } = setup();
    await bff.login();
    clock.advance(299 * 1000);
    fake.routes['POST /session/refresh'] = () => fake.envelope(401, 'BFF.SESSION_EXPIRED');
    await assert.rejects(bff.getIdToken(), (err) => isCode(err, 'BFF.SESSION_EXPIRED') && err.status === 401);
    clock.advance(-200 * 1000); // even "earlier", the old token is gone
    await assert.rejects(bff.getIdToken(), (err) => isCode(err, 'BFF.SESSION_EXPIRED'));
    assert.equal(fake.count('POST /session/refresh'), 2);
  });

  test('an outcome without a token supersedes the one in memory', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.outcome = { status: 'SOCIAL_BIND', flows: [] };
    await bff.login();
    await bff.getIdToken();
    assert.equal(fake.count('POST /session/refresh'), 1);
  });
});

describe('errors', () => {
  test('one typed error: bff envelope, status, request_id, retry_after, errors', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /bind/username-password'] = () =>
      fake.envelope(400, 'BFF.VALIDATION', {
        request_id: 'rid-1',
        body: { errors: { user_name: ['must not be blank'] } },
      });
    const err = await bff.bindWithPassword(' ', 'pw').catch((e) => e);
    assert.ok(err instanceof BffError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'BffError');
    assert.equal(err.error_code, 'BFF.VALIDATION');
    assert.equal(err.error_msg, 'bff.validation');
    assert.equal(err.message, 'bff.validation');
    assert.equal(err.request_id, 'rid-1');
    assert.equal(err.status, 400);
    assert.equal(err.retry_after, null);
    assert.deepEqual(err.errors, { user_name: ['must not be blank'] });
  });

  test('IDaaS codes match by suffix', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /bind/username-password'] = () => fake.envelope(401, 'IDAAS.SDK.LOGIN.1005');
    const err = await bff.bindWithPassword('alice', 'wrong').catch((e) => e);
    assert.ok(err.is('LOGIN.1005'));
    assert.ok(err.is('SDK.LOGIN.1005'));
    assert.ok(!err.is('1005.X'));
    assert.ok(!err.is('GIN.1005'));
    assert.ok(isCode(err, 'IDAAS.SDK.LOGIN.1005'));
    assert.ok(!isCode(new Error('x'), 'LOGIN.1005'));
  });

  test('a foreign error page is HTTP.<status> with our request id', async () => {
    const { fake, bff } = setup();
    fake.routes['GET /session'] = () => ({ status: 502, body: '<html>Bad Gateway</html>' });
    const err = await bff.sessionStatus().catch((e) => e);
    assert.equal(err.error_code, 'HTTP.502');
    assert.equal(err.status, 502);
    assert.equal(err.request_id, fake.calls.at(-1).header['X-Request-ID']);
  });

  test('request_id falls back to the X-Request-ID answer header', async () => {
    const { fake, bff } = setup();
    fake.routes['GET /session'] = () => ({
      status: 500,
      body: { error_code: 'BFF.INTERNAL' },
      headers: { 'x-request-id': 'from-header' },
    });
    const err = await bff.sessionStatus().catch((e) => e);
    assert.equal(err.request_id, 'from-header');
  });

  test('Retry-After as an HTTP date', async () => {
    const { fake, clock, bff } = setup();
    const at = new Date(clock.now() + 90 * 1000).toUTCString();
    fake.routes['POST /verification-codes'] = () =>
      fake.envelope(429, 'BFF.RATE_LIMITED', { headers: { 'Retry-After': at } });
    const err = await bff
      .sendCode({ channel: 'sms', to: '+86-1', purpose: 'bind', captcha: { token: 't', point_json: '{}' } })
      .catch((e) => e);
    assert.equal(err.retry_after, 90);
  });

  test('no answer: CLIENT.NETWORK or CLIENT.TIMEOUT, with the X-Request-ID we sent', async () => {
    const { fake, bff } = setup();
    fake.routes['GET /session'] = () => ({ fail: 'request:fail net::ERR_CONNECTION_RESET' });
    let err = await bff.sessionStatus().catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.NETWORK');
    assert.equal(err.status, 0);
    assert.equal(err.request_id, fake.calls.at(-1).header['X-Request-ID']);
    fake.routes['GET /session'] = () => ({ fail: 'request:fail timeout' });
    err = await bff.sessionStatus().catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.TIMEOUT');
  });

  test('the timeout given to wx.request is 40 s by default, and configurable', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    assert.equal(DEFAULT_TIMEOUT_MS, 40000);
    assert.ok(fake.calls.every((c) => c.timeout === 40000));
    const other = setup({ timeoutMs: 50000 });
    await other.bff.sessionStatus();
    assert.equal(other.fake.calls[0].timeout, 50000);
  });

  test('a request that never calls back is timed out and aborted by the client itself', async () => {
    const { fake, bff } = setup({ timeoutMs: 20 }); // the guard adds 2 s on top
    await bff.sessionStatus();
    let task;
    const plain = fake.wx.request;
    fake.wx.request = (o) => {
      task = plain(o);
      return task;
    };
    fake.routes['GET /session'] = () => ({ hang: true });
    const err = await bff.sessionStatus().catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.TIMEOUT');
    assert.equal(task.aborted, true);
  });
});

describe('retries', () => {
  const sendArgs = {
    channel: 'sms',
    to: '+86-13800000000',
    purpose: 'bind',
    captcha: { token: 't', point_json: '{}' },
  };

  /** The route answers `answers` in turn, then the default. */
  function script(fake, route, answers) {
    const plain = fake.routes[route];
    fake.routes[route] = (req) => (answers.length ? answers.shift()(req) : plain(req));
  }

  test('429 on login: waits Retry-After, then again with a fresh wx.login code', async () => {
    const { fake, clock, bff } = setup();
    await bff.sessionStatus();
    script(fake, 'POST /login', [
      () => fake.envelope(429, 'BFF.RATE_LIMITED', { headers: { 'Retry-After': '2' } }),
    ]);
    const out = await bff.login();
    assert.equal(out.status, 'SUCCESS');
    assert.equal(clock.sleeps.length, 1);
    assert.ok(clock.sleeps[0] >= 2000 && clock.sleeps[0] < 2600);
    const logins = fake.calls.filter((c) => c.path === '/login');
    assert.equal(logins.length, 2);
    assert.notEqual(logins[0].data.code, logins[1].data.code);
  });

  test('429 with a long Retry-After is thrown at once for the UI countdown', async () => {
    const { fake, clock, bff } = setup();
    fake.routes['GET /captcha'] = () =>
      fake.envelope(429, 'BFF.RATE_LIMITED', { headers: { 'Retry-After': '42' } });
    const err = await bff.getCaptcha().catch((e) => e);
    assert.equal(err.error_code, 'BFF.RATE_LIMITED');
    assert.equal(err.retry_after, 42);
    assert.equal(clock.sleeps.length, 0);
    assert.equal(fake.count('GET /captcha'), 1);
  });

  test('429 without Retry-After is not guessed at', async () => {
    const { fake, clock, bff } = setup();
    fake.routes['GET /session'] = () => fake.envelope(429, 'BFF.RATE_LIMITED');
    await assert.rejects(bff.sessionStatus(), (err) => err.retry_after === null);
    assert.equal(clock.sleeps.length, 0);
  });

  test('503 on refresh: exponential backoff, then the error', async () => {
    const { fake, clock, bff } = setup();
    fake.routes['POST /session/refresh'] = () => fake.envelope(503, 'BFF.UPSTREAM_UNAVAILABLE');
    await assert.rejects(bff.refresh(), (err) => err.error_code === 'BFF.UPSTREAM_UNAVAILABLE');
    assert.equal(fake.count('POST /session/refresh'), 3); // 1 + retry.attempts (2)
    assert.equal(clock.sleeps.length, 2);
    assert.ok(clock.sleeps[0] >= 500 && clock.sleeps[0] < 700);
    assert.ok(clock.sleeps[1] >= 1000 && clock.sleeps[1] < 1300);
  });

  test('503 BFF.SESSION_STORE_UNAVAILABLE on wechat/session and logout is retried', async () => {
    const { fake, bff } = setup();
    script(fake, 'POST /wechat/session', [() => fake.envelope(503, 'BFF.SESSION_STORE_UNAVAILABLE')]);
    script(fake, 'DELETE /session', [() => fake.envelope(503, 'BFF.SESSION_STORE_UNAVAILABLE')]);
    await bff.login();
    await bff.logout();
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.count('DELETE /session'), 2);
  });

  test('retry options are honoured', async () => {
    const { fake, clock, bff } = setup({ retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 300 } });
    fake.routes['GET /session'] = () => fake.envelope(503, 'BFF.UPSTREAM_UNAVAILABLE');
    await assert.rejects(bff.sessionStatus());
    assert.equal(fake.count('GET /session'), 5);
    assert.deepEqual(
      clock.sleeps.map((ms) => Math.min(300, Math.floor(ms / 100) * 100)),
      [100, 200, 300, 300],
    );
  });

  test('409 BFF.REQUEST_IN_PROGRESS on refresh and logout: retried after Retry-After', async () => {
    const { fake, clock, bff } = setup();
    await bff.login();
    const busy = () => fake.envelope(409, 'BFF.REQUEST_IN_PROGRESS', { headers: { 'Retry-After': '1' } });
    script(fake, 'POST /session/refresh', [busy]);
    script(fake, 'DELETE /session', [busy, busy]);
    await bff.refresh();
    await bff.logout();
    assert.equal(fake.count('POST /session/refresh'), 2);
    assert.equal(fake.count('DELETE /session'), 3);
    assert.equal(clock.sleeps.length, 3);
  });

  for (const [name, call, route] of [
    ['bindWithPassword', (bff) => bff.bindWithPassword('alice', 'pw'), 'POST /bind/username-password'],
    ['bindWithWechatPhone', (bff) => bff.bindWithWechatPhone('pc'), 'POST /bind/wechat-phone'],
    ['bindWithCode', (bff) => bff.bindWithCode({ mobile: '+86-1' }, '1'), 'POST /bind/verification-code'],
    ['registerWithWechatPhone', (bff) => bff.registerWithWechatPhone('pc'), 'POST /register/wechat-phone'],
    [
      'registerWithCode',
      (bff) => bff.registerWithCode({ email: 'a@b.cn' }, '1'),
      'POST /register/verification-code',
    ],
    ['loginWithPhone', (bff) => bff.loginWithPhone('pc'), 'POST /login/phone'],
    ['sendCode', (bff) => bff.sendCode(sendArgs), 'POST /verification-codes'],
  ]) {
    test(`${name} is never retried (429, 503, 409)`, async () => {
      for (const answer of [
        (f) => f.envelope(429, 'BFF.RATE_LIMITED', { headers: { 'Retry-After': '1' } }),
        (f) => f.envelope(503, 'BFF.UPSTREAM_UNAVAILABLE'),
        (f) => f.envelope(409, 'BFF.REQUEST_IN_PROGRESS', { headers: { 'Retry-After': '1' } }),
      ]) {
        const { fake, clock, bff } = setup();
        fake.routes[route] = () => answer(fake);
        await assert.rejects(call(bff), BffError);
        assert.equal(fake.count(route), 1);
        assert.equal(clock.sleeps.length, 0);
      }
    });
  }

  test('502 and 504 are never retried', async () => {
    for (const [status, code] of [
      [502, 'BFF.UPSTREAM_BAD_RESPONSE'],
      [504, 'BFF.UPSTREAM_TIMEOUT'],
    ]) {
      const { fake, bff } = setup();
      fake.routes['POST /session/refresh'] = () => fake.envelope(status, code);
      await assert.rejects(bff.refresh(), (err) => err.error_code === code);
      assert.equal(fake.count('POST /session/refresh'), 1);
    }
  });
});

describe('a lost answer to a sign-in call', () => {
  test('timeout, but GET /session says signed in: SUCCESS (recovered), token by refresh', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /bind/username-password'] = () => ({ fail: 'request:fail timeout' });
    const out = await bff.bindWithPassword('alice', 'pw');
    assert.deepEqual(out, { status: 'SUCCESS', flows: [], recovered: true, expire: 1000 });
    assert.equal(fake.count('POST /bind/username-password'), 1); // not sent again
    assert.ok(await bff.getIdToken());
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('timeout and not signed in: CLIENT.TIMEOUT with session_active false, sent once', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /bind/wechat-phone'] = () => ({ fail: 'request:fail timeout' });
    fake.routes['GET /session'] = () => ({ status: 200, body: { active: false } });
    const err = await bff.bindWithWechatPhone('pc').catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.TIMEOUT');
    assert.equal(err.session_active, false);
    assert.equal(fake.count('POST /bind/wechat-phone'), 1);
  });

  test('network error and the check fails too: session_active stays undefined', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    fake.routes['POST /register/verification-code'] = () => ({ fail: 'request:fail' });
    fake.routes['GET /session'] = () => ({ fail: 'request:fail' });
    const err = await bff.registerWithCode({ mobile: '+86-1' }, '1').catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.NETWORK');
    assert.equal(err.session_active, undefined);
  });

  test('a code send that timed out is just reported (no session check can tell)', async () => {
    const { fake, bff } = setup();
    fake.routes['POST /verification-codes'] = () => ({ fail: 'request:fail timeout' });
    const err = await bff
      .sendCode({ channel: 'sms', to: '+86-1', purpose: 'bind', captcha: { token: 't', point_json: '{}' } })
      .catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.TIMEOUT');
    assert.equal(fake.count('GET /session'), 0);
  });
});

describe('logout', () => {
  test('DELETE /session, then the handle and the token are gone', async () => {
    const { fake, bff } = setup();
    await bff.login();
    await bff.logout();
    assert.equal(fake.count('DELETE /session'), 1);
    assert.equal(fake.storage.get('bff.handle'), undefined);
    assert.ok(fake.storage.get('bff.fingerprint')); // the device keeps its fingerprint
    await bff.getIdToken(); // not from memory: a new handle and a refresh
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('local state is cleared even when the server call fails', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.routes['DELETE /session'] = () => fake.envelope(500, 'BFF.INTERNAL');
    await assert.rejects(bff.logout(), (err) => err.error_code === 'BFF.INTERNAL');
    assert.equal(fake.storage.get('bff.handle'), undefined);
  });

  test('a refresh answered after logout does not bring the token back', async () => {
    const { fake, clock, bff } = setup();
    await bff.login();
    clock.advance(300 * 1000);
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const plain = fake.routes['POST /session/refresh'];
    fake.routes['POST /session/refresh'] = async (req) => {
      await held;
      return plain(req);
    };
    const pending = bff.getIdToken();
    await new Promise((resolve) => setImmediate(resolve));
    const loggedOut = bff.logout();
    release();
    await pending;
    await loggedOut;
    fake.routes['POST /session/refresh'] = () => fake.envelope(401, 'BFF.SESSION_EXPIRED');
    await assert.rejects(bff.getIdToken(), (err) => err.is('BFF.SESSION_EXPIRED'));
  });
});

describe('device headers', () => {
  test('from wx.getDeviceInfo and wx.getAppBaseInfo, on every call', async () => {
    const { fake, bff } = setup();
    await bff.login();
    for (const c of fake.calls) {
      assert.equal(c.header['X-operating-sys-version'], 'ios iOS 17.4');
      assert.match(c.header['X-device-fingerprint'], /^[0-9a-f]{32}$/);
      assert.equal(c.header['X-agent'], 'bff-client/0.1.0 WeChat/8.0.50 base/3.4.0');
      assert.equal(c.header['X-L'], 'zh');
      assert.match(c.header['X-Request-ID'], /^[A-Za-z0-9._-]{1,128}$/);
    }
    assert.equal(new Set(fake.calls.map((c) => c.header['X-Request-ID'])).size, fake.calls.length);
  });

  test('the fingerprint is stable across clients (stored)', async () => {
    const { fake, clock, bff } = setup();
    await bff.sessionStatus();
    const other = createBffClient({ baseUrl: BASE, wx: fake.wx, now: clock.now, sleep: clock.sleep });
    await other.sessionStatus();
    assert.equal(new Set(fake.calls.map((c) => c.header['X-device-fingerprint'])).size, 1);
  });

  test('wx.getSystemInfoSync fallback on old base libraries', async () => {
    const { fake, bff } = setup();
    delete fake.wx.getDeviceInfo;
    delete fake.wx.getAppBaseInfo;
    fake.wx.getSystemInfoSync = () => ({
      platform: 'android',
      system: 'Android 14',
      language: 'en',
      version: '8.0.40',
      SDKVersion: '2.19.0',
    });
    await bff.sessionStatus();
    const h = fake.calls[0].header;
    assert.equal(h['X-operating-sys-version'], 'android Android 14');
    assert.equal(h['X-agent'], 'bff-client/0.1.0 WeChat/8.0.40 base/2.19.0');
    assert.equal(h['X-L'], 'en');
  });

  test('nothing known: still non-blank, printable headers (bff requires them)', async () => {
    const fake = createFakeWx();
    const bff = createBffClient({
      baseUrl: BASE,
      wx: { getDeviceInfo: () => ({ platform: 'ios', system: '\u4e2d\u6587\n' }) },
      request: fake.wx.request,
      login: fake.wx.login,
      storage: fake.wx,
      agent: 'acme-mp/2.0 \u00e9',
      language: 'ja',
    });
    await bff.sessionStatus();
    const h = fake.calls[0].header;
    assert.equal(h['X-operating-sys-version'], 'ios');
    assert.equal(h['X-agent'], 'acme-mp/2.0');
    assert.equal(h['X-L'], 'ja');
    const bare = createBffClient({
      baseUrl: BASE,
      wx: {},
      request: fake.wx.request,
      login: fake.wx.login,
      storage: fake.wx,
    });
    await bare.sessionStatus();
    assert.equal(fake.calls.at(-1).header['X-operating-sys-version'], 'unknown');
    assert.equal(fake.calls.at(-1).header['X-L'], 'en');
  });

  test('a throwing getDeviceInfo falls back instead of failing the call', async () => {
    const { fake, bff } = setup();
    fake.wx.getDeviceInfo = () => {
      throw new Error('not supported');
    };
    fake.wx.getSystemInfoSync = () => ({ platform: 'devtools', system: 'iOS 10' });
    await bff.sessionStatus();
    assert.equal(fake.calls[0].header['X-operating-sys-version'], 'devtools iOS 10');
  });
});

describe('nextStep', () => {
  test('signed in', () => {
    assert.deepEqual(nextStep({ status: 'SUCCESS' }), { step: 'SIGNED_IN', status: 'SUCCESS', routes: [] });
    // A PASSWORD_WARN with an id_token: signed in, only warned (a bff without the password step).
    assert.equal(nextStep({ status: 'PASSWORD_WARN', id_token: 'x.y.z' }).step, 'SIGNED_IN');
  });

  test('the pending steps: MFA, the password steps (warned, expired)', () => {
    assert.deepEqual(nextStep({ status: 'MFA_AUTH' }), { step: 'MFA', status: 'MFA_AUTH', routes: [] });
    assert.equal(nextStep({ status: 'PASSWORD_WARN' }).step, 'PASSWORD_WARN');
    assert.equal(nextStep({ status: 'PASSWORD_EXPIRED' }).step, 'PASSWORD_EXPIRED');
  });

  test('blocked: denied, anything unknown', () => {
    for (const status of ['ACCESS_DENIED', 'SOMETHING_NEW', 'toString', 'constructor']) {
      assert.deepEqual(nextStep({ status }), { step: 'BLOCKED', status, routes: [] });
    }
  });

  test('SOCIAL_BIND: the tenant hint leads', () => {
    assert.deepEqual(nextStep({ status: 'SOCIAL_BIND', flows: ['VERIFY_PHONE'] }).routes, [
      'bind/wechat-phone',
      'bind/verification-code:sms',
      'bind/username-password',
      'bind/verification-code:email',
    ]);
    assert.equal(
      nextStep({ status: 'SOCIAL_BIND', flows: ['VERIFY_EMAIL'] }).routes[0],
      'bind/verification-code:email',
    );
    assert.equal(nextStep({ status: 'SOCIAL_BIND' }).routes[0], 'bind/username-password');
  });

  test('USER_REGISTER adds the register routes', () => {
    const step = nextStep({ status: 'USER_REGISTER', flows: [] });
    assert.equal(step.step, 'BIND_OR_REGISTER');
    assert.deepEqual(step.routes.slice(4), [
      'register/wechat-phone',
      'register/verification-code:sms',
      'register/verification-code:email',
    ]);
  });
});

test('fakeJwt helper round trip (the client reads exp - iat)', async () => {
  const { fake, clock, bff } = setup();
  const iat = Math.floor(clock.now() / 1000);
  fake.outcome = {
    status: 'SUCCESS',
    expire: 10,
    id_token: fakeJwt({ iat, exp: iat + 1000, name: '\u5f20\u4e09' }),
  };
  await bff.login();
  clock.advance(900 * 1000);
  await bff.getIdToken();
  assert.equal(fake.count('POST /session/refresh'), 0); // 1000 s token: refreshed at 940 s
});
