'use strict';
// The next steps of a login (MFA_AUTH, PASSWORD_WARN, PASSWORD_EXPIRED) and the WeChat unbind,
// against a fake wx (test/support/fake-wx.js): what goes over the wire, what the client keeps.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { createBffClient, isCode, nextStep } = require('../bff-client');
const { createFakeWx, createClock } = require('./support/fake-wx');
const { policyProblems, readPolicy } = require('../bff-client/password-policy.js');

const BASE = 'https://bff.example.com';
const SLIDER = { token: 'cap-1', point_json: '{"x":237.0,"y":5.0}' };

function setup(options = {}) {
  const clock = createClock();
  const fake = createFakeWx({ clock });
  const bff = createBffClient({ baseUrl: BASE, wx: fake.wx, now: clock.now, sleep: clock.sleep, ...options });
  return { fake, clock, bff };
}

/** login() answers `status` (with `extra`), and that step is pending on the fake bff. */
async function loginInto(fake, bff, status, extra = {}) {
  fake.outcome = { status, ...extra };
  fake.step = status;
  return bff.login();
}

/** The last request, as `METHOD /path`, with its body and Authorization. */
function lastCall(fake) {
  const call = fake.calls.at(-1);
  return { route: `${call.method} ${call.path}`, data: call.data, header: call.header };
}

/** After a SUCCESS: the id_token comes from memory, no refresh. */
async function assertSignedIn(fake, bff, out) {
  assert.equal(out.status, 'SUCCESS');
  assert.equal(typeof out.id_token, 'string');
  assert.equal(await bff.getIdToken(), out.id_token);
  assert.equal(fake.count('POST /session/refresh'), 0);
}

const noPendingStep = (err) => isCode(err, 'BFF.NO_PENDING_STEP') && err.status === 409;

describe('MFA_AUTH: the second factor', () => {
  test('login answers MFA_AUTH: no id_token, nextStep says MFA', async () => {
    const { fake, bff } = setup();
    const out = await loginInto(fake, bff, 'MFA_AUTH');
    assert.deepEqual(out, { status: 'MFA_AUTH', flows: [] });
    assert.deepEqual(nextStep(out), { step: 'MFA', status: 'MFA_AUTH', routes: [] });
  });

  test('mfaInfo: GET /mfa with the handle, no body; factor and masked destination', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    assert.deepEqual(await bff.mfaInfo(), { factor: 'sms', destination: '+86-152****7124' });
    const call = lastCall(fake);
    assert.equal(call.route, 'GET /mfa');
    assert.equal(call.data, undefined);
    assert.equal(call.header.Authorization, `Bearer ${fake.storage.get('bff.handle')}`);
    assert.ok(call.header['X-device-fingerprint'] && call.header['X-L']);
  });

  test('mfaInfo: 409 BFF.NO_PENDING_STEP when none; a foreign answer is CLIENT.BAD_RESPONSE', async () => {
    const { fake, bff } = setup();
    await bff.login();
    await assert.rejects(bff.mfaInfo(), noPendingStep);
    fake.routes['GET /mfa'] = () => ({ status: 200, body: '<html>portal</html>' });
    await assert.rejects(bff.mfaInfo(), (err) => err.error_code === 'CLIENT.BAD_RESPONSE');
  });

  test('mfaInfo is safe to repeat: 503 is retried', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    const plain = fake.routes['GET /mfa'];
    let busy = 1;
    fake.routes['GET /mfa'] = (req) => (busy-- > 0 ? fake.envelope(503, 'BFF.UPSTREAM_UNAVAILABLE') : plain(req));
    assert.equal((await bff.mfaInfo()).factor, 'sms');
    assert.equal(fake.count('GET /mfa'), 2);
  });

  test('sendMfaCode: POST /mfa/codes with the slider only; 204 resolves with nothing', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    assert.equal(await bff.sendMfaCode({ ...SLIDER, extra: 'dropped' }), undefined);
    const call = lastCall(fake);
    assert.equal(call.route, 'POST /mfa/codes');
    assert.deepEqual(call.data, { captcha: SLIDER });
    assert.equal(call.header['Content-Type'], 'application/json');
  });

  test('sendMfaCode: 429 is never retried (an SMS), retry_after given; 409 without a step', async () => {
    const { fake, clock, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    fake.routes['POST /mfa/codes'] = () =>
      fake.envelope(429, 'BFF.RATE_LIMITED', { headers: { 'Retry-After': '2' } });
    const err = await bff.sendMfaCode(SLIDER).catch((e) => e);
    assert.ok(isCode(err, 'BFF.RATE_LIMITED') && err.retry_after === 2, err.error_code);
    assert.equal(fake.count('POST /mfa/codes'), 1);
    assert.equal(clock.sleeps.length, 0);
    fake.routes['POST /mfa/codes'] = () => fake.envelope(409, 'BFF.NO_PENDING_STEP');
    await assert.rejects(bff.sendMfaCode(SLIDER), noPendingStep);
  });

  test('verifyMfa: POST /mfa/verify {verify_code}; SUCCESS keeps the id_token as login does', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    const out = await bff.verifyMfa('123456');
    const call = lastCall(fake);
    assert.equal(call.route, 'POST /mfa/verify');
    assert.deepEqual(call.data, { verify_code: '123456' });
    assert.deepEqual(Object.keys(out).sort(), ['expire', 'flows', 'id_token', 'status']);
    assert.equal(nextStep(out).step, 'SIGNED_IN');
    await assertSignedIn(fake, bff, out);
  });

  test('verifyMfa: a wrong code is the IDaaS error, the step stays; never retried', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    await assert.rejects(bff.verifyMfa('000000'), (err) => err.is('SMS.1003'));
    assert.equal(fake.count('POST /mfa/verify'), 1);
    assert.equal((await bff.verifyMfa('123456')).status, 'SUCCESS');
    await assert.rejects(bff.verifyMfa('123456'), noPendingStep); // finished: nothing pending
  });

  test('verifyMfa: a lost answer is settled by GET /session, as for a bind', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'MFA_AUTH');
    fake.routes['POST /mfa/verify'] = () => ({ fail: 'request:fail timeout' });
    const out = await bff.verifyMfa('123456');
    assert.deepEqual(out, { status: 'SUCCESS', flows: [], recovered: true, expire: 1000 });
    assert.equal(fake.count('POST /mfa/verify'), 1);
  });
});

describe('PASSWORD_WARN and PASSWORD_EXPIRED: the password steps', () => {
  const POLICY = { min_length: 8, max_length: 20, pattern: '^(?=.*[A-Za-z])(?=.*\\d).+$' };

  test('the outcome carries the policy (known fields only); nextStep names the step', async () => {
    const { fake, bff } = setup();
    const out = await loginInto(fake, bff, 'PASSWORD_WARN', {
      password_policy: { ...POLICY, min_length: 8.9, max_length: 'x', other: 1 },
    });
    const trimmed = { min_length: 8, pattern: POLICY.pattern };
    assert.deepEqual(out, { status: 'PASSWORD_WARN', flows: [], password_policy: trimmed });
    assert.equal(nextStep(out).step, 'PASSWORD_WARN');
    const expired = await loginInto(fake, bff, 'PASSWORD_EXPIRED', { password_policy: POLICY });
    assert.deepEqual(expired.password_policy, POLICY);
    assert.equal(nextStep(expired).step, 'PASSWORD_EXPIRED');
    // A policy on any other status is not a password step's: dropped.
    const mfa = await loginInto(fake, bff, 'MFA_AUTH', { password_policy: POLICY });
    assert.equal(mfa.password_policy, undefined);
  });

  test('a PASSWORD_WARN that came with an id_token is signed in (a bff that only warns)', () => {
    assert.equal(nextStep({ status: 'PASSWORD_WARN', id_token: 'x.y.z' }).step, 'SIGNED_IN');
    assert.equal(nextStep({ status: 'PASSWORD_WARN' }).step, 'PASSWORD_WARN');
  });

  test('skipPasswordChange: POST /password/skip, no body; SUCCESS keeps the id_token', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_WARN', { password_policy: POLICY });
    const out = await bff.skipPasswordChange();
    const call = lastCall(fake);
    assert.equal(call.route, 'POST /password/skip');
    assert.equal(call.data, undefined);
    await assertSignedIn(fake, bff, out);
  });

  test('skipPasswordChange while PASSWORD_EXPIRED (or nothing) is pending: 409, not retried', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_EXPIRED');
    await assert.rejects(bff.skipPasswordChange(), noPendingStep);
    assert.equal(fake.count('POST /password/skip'), 1);
  });

  test('changePassword: POST /password/change {old_password, new_password}; SUCCESS', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_EXPIRED', { password_policy: POLICY });
    const out = await bff.changePassword('old-secret-1', 'new-secret-2');
    const call = lastCall(fake);
    assert.equal(call.route, 'POST /password/change');
    assert.deepEqual(call.data, { old_password: 'old-secret-1', new_password: 'new-secret-2' });
    await assertSignedIn(fake, bff, out);
  });

  test("changePassword: a new password outside the outcome's policy is refused here, nothing sent", async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_WARN', { password_policy: POLICY });
    const sent = fake.calls.length;
    for (const weak of ['short1', 'lettersonly', 'a1'.repeat(11)]) {
      const err = await bff.changePassword('old-secret-1', weak).catch((e) => e);
      assert.ok(isCode(err, 'BFF.PASSWORD_POLICY'), err.error_code);
      assert.equal(err.status, 0);
      assert.equal(err.errors.new_password.length, 1);
      assert.equal(typeof err.errors.new_password[0], 'string');
    }
    assert.equal(fake.calls.length, sent);
    assert.equal((await bff.changePassword('old-secret-1', 'new-secret-2')).status, 'SUCCESS');
  });

  test("changePassword: the local messages follow X-L (zh here, from the app's language)", async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_WARN', { password_policy: { min_length: 8 } });
    const err = await bff.changePassword('old-secret-1', 'abc1').catch((e) => e);
    assert.deepEqual(err.errors.new_password, ['至少 8 个字符']);
    const en = setup({ language: 'en' });
    await loginInto(en.fake, en.bff, 'PASSWORD_WARN', { password_policy: { min_length: 8 } });
    const err2 = await en.bff.changePassword('old-secret-1', 'abc1').catch((e) => e);
    assert.deepEqual(err2.errors.new_password, ['at least 8 characters']);
  });

  test("changePassword: bff's 400 BFF.PASSWORD_POLICY (no local policy) with errors.new_password", async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_EXPIRED'); // no policy in the outcome: bff alone checks
    const err = await bff.changePassword('old-secret-1', 'weak').catch((e) => e);
    assert.ok(isCode(err, 'BFF.PASSWORD_POLICY') && err.status === 400, err.error_code);
    assert.deepEqual(err.errors, { new_password: ['does not meet the password policy'] });
    assert.equal(fake.count('POST /password/change'), 1);
  });

  test('changePassword: a wrong old password is the IDaaS error; 409 forgets the policy', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_WARN', { password_policy: POLICY });
    await assert.rejects(bff.changePassword('wrong', 'new-secret-2'), (err) => err.is('LOGIN.1005'));
    fake.step = null; // expired on the server meanwhile
    await assert.rejects(bff.changePassword('old-secret-1', 'new-secret-2'), noPendingStep);
    // The policy went with the step: a weak password now goes to bff (which knows better).
    await assert.rejects(bff.changePassword('old-secret-1', 'weak'), noPendingStep);
    assert.equal(fake.count('POST /password/change'), 3);
  });

  test('a later outcome replaces the policy: after SUCCESS none is checked locally', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_WARN', { password_policy: POLICY });
    fake.outcome = null;
    await bff.login(); // SUCCESS
    fake.step = 'PASSWORD_WARN';
    await assert.rejects(bff.changePassword('old-secret-1', 'weak'), (err) => err.status === 400);
  });

  test('no password is kept: not in storage, not in the client after the call', async () => {
    const { fake, bff } = setup();
    await loginInto(fake, bff, 'PASSWORD_WARN', { password_policy: POLICY });
    await bff.changePassword('old-secret-1', 'new-secret-2');
    const stored = JSON.stringify([...fake.storage.entries()]);
    assert.ok(!stored.includes('secret'), stored);
  });
});

describe('the password policy on its own', () => {
  test('readPolicy: known fields, checked; null for anything but an object', () => {
    assert.equal(readPolicy(null), null);
    assert.equal(readPolicy('{"min_length":8}'), null);
    assert.deepEqual(readPolicy({ min_length: -1, max_length: 20, pattern: '' }), { max_length: 20 });
  });

  test('lengths count characters; the pattern is searched; one JS cannot read is skipped', () => {
    assert.deepEqual(policyProblems({ min_length: 3, max_length: 3 }, '密码a', 'en'), []);
    assert.equal(policyProblems({ pattern: '\\d' }, 'abc1def', 'en').length, 0);
    assert.equal(policyProblems({ pattern: '\\d' }, 'abcdef', 'en').length, 1);
    assert.deepEqual(policyProblems({ pattern: '(?<' }, 'abc', 'en'), []);
  });
});

describe('unbindWechat', () => {
  test('DELETE /wechat-binding with the handle; then the handle and id_token are gone', async () => {
    const { fake, bff } = setup();
    await bff.login();
    const handle = fake.storage.get('bff.handle');
    assert.equal(await bff.unbindWechat(), undefined);
    const call = lastCall(fake);
    assert.equal(call.route, 'DELETE /wechat-binding');
    assert.equal(call.data, undefined);
    assert.equal(call.header.Authorization, `Bearer ${handle}`);
    assert.equal(fake.storage.get('bff.handle'), undefined);
    assert.ok(fake.revoked.has(handle));
    // Not from memory: a new handle, then a refresh (which the fake still answers).
    await bff.getIdToken();
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('an error keeps the handle and the id_token; never retried', async () => {
    const { fake, bff } = setup();
    await bff.login();
    const handle = fake.storage.get('bff.handle');
    fake.routes['DELETE /wechat-binding'] = () => fake.envelope(503, 'BFF.UPSTREAM_UNAVAILABLE');
    await assert.rejects(bff.unbindWechat(), (err) => err.is('BFF.UPSTREAM_UNAVAILABLE'));
    assert.equal(fake.count('DELETE /wechat-binding'), 1);
    assert.equal(fake.storage.get('bff.handle'), handle);
    await bff.getIdToken();
    assert.equal(fake.count('POST /session/refresh'), 0);
  });

  test('an answer to a call started before the unbind is not kept', async () => {
    const { fake, bff } = setup();
    await bff.login();
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    fake.routes['POST /bind/username-password'] = async () => {
      await held; // answered as bff did before the unbind ended the handle
      return fake.success();
    };
    const bind = bff.bindWithPassword('alice', 'pw');
    await new Promise((resolve) => setImmediate(resolve));
    await bff.unbindWechat();
    release();
    assert.equal((await bind).status, 'SUCCESS');
    await bff.getIdToken(); // the bind's id_token was not kept: a new handle and a refresh
    assert.equal(fake.count('POST /session/refresh'), 1);
  });
});
