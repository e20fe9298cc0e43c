'use strict';
// End to end: bff-client.js against the real bff in development mode (the in-process Redis
// stand-in and the bundled IDaaS and WeChat simulators, as `make run` starts them, on free
// loopback ports), every flow of README's API table driven through the module.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { nextStep, isCode, BffError } = require('../bff-client');
const { startDevServer } = require('./support/devserver');
const { createDevice } = require('./support/device');
const { nodeRequest } = require('./support/node-request');

const LIMITS = { RATE_LIMIT_LOGIN: '1000/minute', RATE_LIMIT_BIND: '1000/minute' }; // many sign-ins from 127.0.0.1
const SLOW = { timeout: 60000 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let seq = 0;
/** A WeChat user nobody has used yet (one server serves every test of this file). */
const newOpenid = (label) => `o_e2e_${label}_${process.pid}_${++seq}`;

/** What a thief of the phone's storage would get. */
function storedText(device) {
  return JSON.stringify([...device.storage.entries()]);
}

/** The last code the IDaaS "sent" to `to`. */
async function lastCode(server, to) {
  const sent = (await server.sim.inbox()).filter((m) => m.to === to);
  assert.ok(sent.length > 0, `no code sent to ${to}`);
  return sent[sent.length - 1].code;
}

/** Slider, answer (from the simulator, as the user would drag it), code sent: the code. */
async function sendCode(server, device, channel, to, purpose) {
  const cap = await device.bff.getCaptcha();
  assert.ok(cap.token && cap.original_image_base64 && cap.jigsaw_image_base64);
  const point = await server.sim.captchaAnswer(cap.token);
  await device.bff.sendCode({ channel, to, purpose, captcha: { token: cap.token, point_json: point } });
  return lastCode(server, to);
}

describe('bff-client against the real bff', () => {
  let server;
  before(async () => {
    server = await startDevServer({ env: LIMITS });
  }, SLOW);
  after(() => server && server.stop(), SLOW);

  test('first login → SOCIAL_BIND → password bind → SUCCESS → refresh → logout', SLOW, async () => {
    await server.sim.addUser({ user_name: 'e2e-pw', password: 'pw-e2e-1' });
    const phone = createDevice(server, { openid: newOpenid('pw') });
    const { bff } = phone;

    const first = await bff.login();
    assert.equal(first.status, 'SOCIAL_BIND');
    assert.deepEqual(first.flows, ['VERIFY_PHONE']); // the simulator's default tenant hint
    assert.equal(nextStep(first).step, 'BIND');
    assert.deepEqual(
      phone.calls.map((c) => `${c.method} ${c.path}`),
      ['POST /wechat/session', 'POST /login'],
    );

    // A wrong password: the IDaaS's own error, typed; the pending bind stays for the retry.
    const wrong = await bff.bindWithPassword('e2e-pw', 'nope').catch((e) => e);
    assert.ok(wrong instanceof BffError);
    assert.ok(wrong.is('LOGIN.1005'), wrong.error_code);
    assert.match(wrong.error_msg, /attempts left/);
    assert.equal(wrong.request_id, phone.calls.at(-1).header['X-Request-ID']); // bff kept our id

    const bound = await bff.bindWithPassword('e2e-pw', 'pw-e2e-1');
    assert.equal(bound.status, 'SUCCESS');
    assert.ok(bound.expire > 0);
    assert.match(bound.id_token, /^ey[\w-]+\.ey[\w-]+\.[\w-]+$/);
    assert.equal(nextStep(bound).step, 'SIGNED_IN');
    const before = phone.calls.length;
    assert.equal(await bff.getIdToken(), bound.id_token); // from memory
    assert.equal(phone.calls.length, before);
    assert.ok(!storedText(phone).includes(bound.id_token));
    assert.deepEqual([...phone.storage.keys()].sort(), ['bff.fingerprint', 'bff.handle']);

    // Shortly before the id_token expires (300 s in the simulator), getIdToken refreshes.
    phone.advanceClock(250 * 1000);
    const refreshed = await bff.getIdToken();
    assert.notEqual(refreshed, bound.id_token);
    assert.equal(phone.count('POST /session/refresh'), 1);
    const explicit = await bff.refresh();
    assert.ok(explicit.expires_in > 0 && explicit.expires_in <= 300);
    assert.ok(!storedText(phone).includes(explicit.id_token));
    assert.deepEqual(Object.keys(await bff.sessionStatus()).sort(), ['active', 'expires_in']);

    // Bound now: the next sign-in is SUCCESS straight away.
    assert.equal((await bff.login()).status, 'SUCCESS');

    await bff.logout();
    assert.equal(phone.count('DELETE /session'), 1);
    assert.equal(phone.storage.has('bff.handle'), false);
    assert.deepEqual(await bff.sessionStatus(), { active: false }); // a new handle, no session
    const expired = await bff.getIdToken().catch((e) => e);
    assert.ok(isCode(expired, 'BFF.SESSION_EXPIRED'), expired.error_code);
  });

  test('SMS-code bind with the slider (and the per-number limit, not retried)', SLOW, async () => {
    const mobile = '+86-13900000001';
    await server.sim.addUser({ user_name: 'e2e-sms', password: 'pw-e2e-2', mobile });
    const phone = createDevice(server, { openid: newOpenid('sms') });
    const { bff } = phone;
    assert.equal((await bff.login()).status, 'SOCIAL_BIND');

    // A wrong slider: the IDaaS's 400 …CAPTCHA.0002; fetch a new one.
    const cap = await bff.getCaptcha();
    const badSlider = await bff
      .sendCode({
        channel: 'sms',
        to: mobile,
        purpose: 'bind',
        captcha: { token: cap.token, point_json: '{"x":0.0,"y":5.0}' },
      })
      .catch((e) => e);
    assert.ok(badSlider.is('CAPTCHA.0002'), badSlider.error_code);

    const code = await sendCode(server, phone, 'sms', mobile, 'bind');
    assert.match(code, /^\d{6}$/);

    // A second code to the same number within the minute: 429 with Retry-After, sent once.
    const sends = phone.count('POST /verification-codes');
    const limited = await sendCode(server, phone, 'sms', mobile, 'bind').catch((e) => e);
    assert.equal(limited.error_code, 'BFF.RATE_LIMITED');
    assert.equal(limited.status, 429);
    assert.ok(limited.retry_after > 0 && limited.retry_after <= 60, String(limited.retry_after));
    assert.equal(phone.count('POST /verification-codes'), sends + 1);

    const out = await bff.bindWithCode({ mobile }, code);
    assert.equal(out.status, 'SUCCESS');
    assert.ok(await bff.getIdToken());

    // The pending bind is spent: another bind is 409 BFF.NO_PENDING_BIND (start again: login).
    const none = await bff.bindWithCode({ mobile }, code).catch((e) => e);
    assert.equal(none.error_code, 'BFF.NO_PENDING_BIND');
    assert.equal(none.status, 409);
  });

  test('phone-number login, and the phone-number bind', SLOW, async () => {
    const mobile = '+86-13900000002';
    await server.sim.addUser({ user_name: 'e2e-phone', password: 'pw-e2e-3', mobile });

    const returning = createDevice(server, { openid: newOpenid('phone-login') });
    const out = await returning.bff.loginWithPhone(await server.sim.phoneCode(mobile));
    assert.equal(out.status, 'SUCCESS');
    assert.equal(await returning.bff.getIdToken(), out.id_token);
    // The phone code is single-use: spent again, it is the IDaaS's 4xx, and not retried.
    const code = await server.sim.phoneCode(mobile);
    await returning.bff.loginWithPhone(code);
    const spent = await returning.bff.loginWithPhone(code).catch((e) => e);
    assert.ok(spent.is('LOGIN.1009'), spent.error_code);

    const newcomer = createDevice(server, { openid: newOpenid('phone-bind') });
    assert.equal((await newcomer.bff.login()).status, 'SOCIAL_BIND');
    const bound = await newcomer.bff.bindWithWechatPhone(await server.sim.phoneCode(mobile));
    assert.equal(bound.status, 'SUCCESS');
    assert.equal((await newcomer.bff.login()).status, 'SUCCESS');
  });

  test('the register routes on a USER_REGISTER tenant', SLOW, async () => {
    await server.sim.config({ tenant_status: 'USER_REGISTER', flows: [] });
    try {
      const byPhone = createDevice(server, { openid: newOpenid('reg-phone') });
      const first = await byPhone.bff.login();
      assert.equal(first.status, 'USER_REGISTER');
      const step = nextStep(first);
      assert.equal(step.step, 'BIND_OR_REGISTER');
      assert.ok(step.routes.includes('register/wechat-phone'));
      const created = await byPhone.bff.registerWithWechatPhone(
        await server.sim.phoneCode('+86-13700000001'),
      );
      assert.equal(created.status, 'SUCCESS');

      const byEmail = createDevice(server, { openid: newOpenid('reg-email') });
      assert.equal((await byEmail.bff.login()).status, 'USER_REGISTER');
      const email = `new-${process.pid}@example.com`;
      const code = await sendCode(server, byEmail, 'email', email, 'register');
      const registered = await byEmail.bff.registerWithCode({ email }, code);
      assert.equal(registered.status, 'SUCCESS');
      assert.ok(await byEmail.bff.getIdToken());
    } finally {
      await server.sim.config({ tenant_status: 'SOCIAL_BIND', flows: ['VERIFY_PHONE'] });
    }
  });

  test('a register route on a SOCIAL_BIND tenant is refused (typed, not retried)', SLOW, async () => {
    const phone = createDevice(server, { openid: newOpenid('reg-refused') });
    assert.equal((await phone.bff.login()).status, 'SOCIAL_BIND');
    const err = await phone.bff
      .registerWithWechatPhone(await server.sim.phoneCode('+86-13700000002'))
      .catch((e) => e);
    assert.ok(err instanceof BffError);
    assert.ok(err.status >= 400 && err.status < 500, String(err.status));
    assert.equal(phone.count('POST /register/wechat-phone'), 1);
  });

  test('two concurrent calls that both need a handle: one wechat/session', SLOW, async () => {
    const phone = createDevice(server, { openid: newOpenid('concurrent') });
    const [out, status] = await Promise.all([phone.bff.login(), phone.bff.sessionStatus()]);
    assert.equal(out.status, 'SOCIAL_BIND');
    assert.equal(status.active, false);
    assert.equal(phone.count('POST /wechat/session'), 1);
  });

  test('a bind whose answer is lost after it went through: GET /session says SUCCESS', SLOW, async () => {
    await server.sim.addUser({ user_name: 'e2e-lost', password: 'pw-e2e-4' });
    // The phone gives up on the bind (a timeout) although bff finished it: the request reaches
    // bff and is answered, but the client is told "request:fail timeout".
    const request = (o) => {
      if (!o.url.endsWith('/bind/username-password')) return nodeRequest(o);
      return nodeRequest({ ...o, success: () => o.fail({ errMsg: 'request:fail timeout' }) });
    };
    const phone = createDevice(server, { openid: newOpenid('lost-ok'), request });
    assert.equal((await phone.bff.login()).status, 'SOCIAL_BIND');
    const out = await phone.bff.bindWithPassword('e2e-lost', 'pw-e2e-4');
    assert.equal(out.status, 'SUCCESS');
    assert.equal(out.recovered, true);
    assert.equal(phone.count('POST /bind/username-password'), 1); // never sent twice
    assert.ok(await phone.bff.getIdToken()); // by refresh
    assert.equal(phone.count('POST /session/refresh'), 1);
  });

  test('a bind that timed out before reaching bff: not signed in, and the retry works', SLOW, async () => {
    await server.sim.addUser({ user_name: 'e2e-lost2', password: 'pw-e2e-5' });
    let drop = true;
    const request = (o) => {
      if (drop && o.url.endsWith('/bind/username-password')) {
        drop = false;
        setImmediate(() => o.fail({ errMsg: 'request:fail timeout' }));
        return { abort() {} };
      }
      return nodeRequest(o);
    };
    const phone = createDevice(server, { openid: newOpenid('lost-no'), request });
    assert.equal((await phone.bff.login()).status, 'SOCIAL_BIND');
    const err = await phone.bff.bindWithPassword('e2e-lost2', 'pw-e2e-5').catch((e) => e);
    assert.equal(err.error_code, 'CLIENT.TIMEOUT');
    assert.equal(err.session_active, false);
    assert.equal((await phone.bff.bindWithPassword('e2e-lost2', 'pw-e2e-5')).status, 'SUCCESS');
  });

  test('signed out on another device: BFF.SESSION_REVOKED, then BFF.SESSION_EXPIRED', SLOW, async () => {
    await server.sim.addUser({ user_name: 'e2e-two', password: 'pw-e2e-6' });
    const openid = newOpenid('two-devices');
    const phone = createDevice(server, { openid });
    const pc = createDevice(server, { openid }); // WeChat on a PC: same openid, its own handle
    assert.equal((await phone.bff.login()).status, 'SOCIAL_BIND');
    assert.equal((await phone.bff.bindWithPassword('e2e-two', 'pw-e2e-6')).status, 'SUCCESS');
    assert.ok(await pc.bff.getIdToken()); // the server-side session is the WeChat user's
    await pc.bff.logout(); // ends every handle of the user, the phone's too
    phone.advanceClock(290 * 1000);
    const sessions = phone.count('POST /wechat/session');
    const revoked = await phone.bff.getIdToken().catch((e) => e);
    assert.ok(revoked.is('BFF.SESSION_REVOKED'), revoked.error_code); // "signed out on another device"
    assert.equal(revoked.status, 401);
    assert.equal(phone.storage.has('bff.handle'), false);
    assert.equal(phone.count('POST /wechat/session'), sessions); // no new handle behind the page's back
    // The next call gets a new handle; the session is gone: sign in again.
    const err = await phone.bff.getIdToken().catch((e) => e);
    assert.ok(err.is('BFF.SESSION_EXPIRED'), err.error_code);
    assert.equal(err.status, 401);
    assert.equal(phone.count('POST /wechat/session'), sessions + 1);
  });

  test("errors carry bff's envelope: 409 BFF.NO_PENDING_BIND, 400 BFF.VALIDATION", SLOW, async () => {
    const phone = createDevice(server, { openid: newOpenid('errors') });
    const none = await phone.bff.bindWithPassword('x', 'y').catch((e) => e);
    assert.equal(none.error_code, 'BFF.NO_PENDING_BIND');
    assert.ok(none.error_msg);
    assert.equal(none.request_id, phone.calls.at(-1).header['X-Request-ID']);
    assert.equal(none.retry_after, null);
    assert.equal((await phone.bff.login()).status, 'SOCIAL_BIND');
    const invalid = await phone.bff.bindWithCode({ mobile: '13800000000' }, '1').catch((e) => e);
    assert.equal(invalid.error_code, 'BFF.VALIDATION');
    assert.ok(invalid.errors && invalid.errors.mobile, JSON.stringify(invalid.errors));
  });
});

describe('handle expiry mid-session (HANDLE_TTL_S=2)', () => {
  const TTL_S = 2;
  let server;
  before(async () => {
    server = await startDevServer({ env: { ...LIMITS, HANDLE_TTL_S: String(TTL_S) } });
    await server.sim.addUser({ user_name: 'e2e-ttl', password: 'pw-e2e-7' });
  }, SLOW);
  after(() => server && server.stop(), SLOW);

  test('an expired handle is re-obtained once, transparently; the session lives on', SLOW, async () => {
    const phone = createDevice(server, { openid: newOpenid('ttl') });
    assert.equal((await phone.bff.login()).status, 'SOCIAL_BIND');
    assert.equal((await phone.bff.bindWithPassword('e2e-ttl', 'pw-e2e-7')).status, 'SUCCESS');
    const handle = phone.storage.get('bff.handle');

    await sleep(TTL_S * 1000 + 600); // bff forgets the handle
    const status = await phone.bff.sessionStatus();
    assert.equal(status.active, true); // the session is the WeChat user's, not the handle's
    assert.equal(phone.count('POST /wechat/session'), 2);
    assert.equal(phone.count('GET /session'), 2); // 401, then the same call again
    assert.notEqual(phone.storage.get('bff.handle'), handle);

    await sleep(TTL_S * 1000 + 600);
    // Both calls get 401 with the same stale handle; they share one new handle.
    const [a, b, c] = await Promise.all([
      phone.bff.sessionStatus(),
      phone.bff.refresh(),
      phone.bff.getCaptcha(),
    ]);
    assert.equal(a.active, true);
    assert.ok(b.id_token);
    assert.ok(c.token);
    assert.equal(phone.count('POST /wechat/session'), 3);
  });
});
