'use strict';
// The user's sessions (listSessions, endSession) and 401 BFF.SESSION_REVOKED on any call of bff,
// against a fake wx (test/support/fake-wx.js): what goes over the wire, and what the client keeps.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { createBffClient, isCode } = require('../bff-client');
const { createFakeWx, createClock } = require('./support/fake-wx');

const BASE = 'https://bff.example.com';

function setup(options = {}) {
  const clock = createClock();
  const fake = createFakeWx({ clock });
  const bff = createBffClient({ baseUrl: BASE, wx: fake.wx, now: clock.now, sleep: clock.sleep, ...options });
  return { fake, clock, bff };
}

/** A second device of the same user on the same fake bff: its own storage, the same handles. */
function secondDevice(fake) {
  const storage = new Map();
  const wx = {
    ...fake.wx,
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
  };
  return { storage, bff: createBffClient({ baseUrl: BASE, wx }) };
}

describe('listSessions', () => {
  test('GET /sessions with the handle: the array as bff sent it, this device current', async () => {
    const { fake, bff } = setup();
    await bff.login();
    const pc = secondDevice(fake);
    await pc.bff.sessionStatus();
    const sessions = await bff.listSessions();
    const call = fake.calls.at(-1);
    assert.equal(`${call.method} ${call.path}`, 'GET /sessions');
    assert.equal(call.header.Authorization, `Bearer ${fake.storage.get('bff.handle')}`);
    assert.equal(call.data, undefined);
    assert.equal(sessions.length, 2);
    assert.deepEqual(Object.keys(sessions[0]).sort(), [
      'agent',
      'current',
      'id',
      'ip',
      'issued_at',
      'last_used_at',
      'os',
    ]);
    assert.deepEqual(
      sessions.map((s) => s.current),
      [true, false],
    );
    assert.match(sessions[0].id, /^[0-9a-f]{16}$/);
  });

  test('nulls pass through; an answer without a list is CLIENT.BAD_RESPONSE', async () => {
    const { fake, bff } = setup();
    const bare = { id: '0123456789abcdef', issued_at: 1, last_used_at: 2, current: true };
    Object.assign(bare, { os: null, agent: null, ip: null });
    fake.routes['GET /sessions'] = () => ({ status: 200, body: { sessions: [bare] } });
    assert.deepEqual(await bff.listSessions(), [bare]);
    for (const body of [{}, { sessions: {} }, { sessions: [{ current: true }] }, '<html>portal</html>']) {
      fake.routes['GET /sessions'] = () => ({ status: 200, body });
      await assert.rejects(bff.listSessions(), (err) => err.error_code === 'CLIENT.BAD_RESPONSE');
    }
  });

  test('safe to repeat: 503 is retried', async () => {
    const { fake, bff } = setup();
    const plain = fake.routes['GET /sessions'];
    let busy = 1;
    fake.routes['GET /sessions'] = (req) =>
      busy-- > 0 ? fake.envelope(503, 'BFF.SESSION_STORE_UNAVAILABLE') : plain(req);
    assert.equal((await bff.listSessions()).length, 1);
    assert.equal(fake.count('GET /sessions'), 2);
  });
});

describe('endSession', () => {
  test("DELETE /sessions/{id}: another device's session ends; this one keeps its handle", async () => {
    const { fake, bff } = setup();
    await bff.login();
    const pc = secondDevice(fake);
    await pc.bff.sessionStatus();
    const other = (await bff.listSessions()).find((s) => !s.current);
    assert.equal(await bff.endSession(other.id), undefined);
    const call = fake.calls.at(-1);
    assert.equal(`${call.method} ${call.path}`, `DELETE /sessions/${other.id}`);
    assert.equal(call.header.Authorization, `Bearer ${fake.storage.get('bff.handle')}`);
    assert.ok(fake.storage.get('bff.handle'));
    assert.equal((await bff.sessionStatus()).active, true);
    // The other device is told so, and left signed out: no new handle behind its back.
    const err = await pc.bff.sessionStatus().catch((e) => e);
    assert.ok(isCode(err, 'BFF.SESSION_REVOKED') && err.status === 401, err.error_code);
    assert.equal(pc.storage.get('bff.handle'), undefined);
  });

  test('the id is URL-encoded; an unknown one is 404 BFF.NOT_FOUND and changes nothing', async () => {
    const { fake, bff } = setup();
    await bff.login();
    const err = await bff.endSession('a/b c').catch((e) => e);
    assert.equal(fake.calls.at(-1).path, '/sessions/a%2Fb%20c');
    assert.ok(isCode(err, 'BFF.NOT_FOUND') && err.status === 404, err.error_code);
    assert.ok(fake.storage.get('bff.handle'));
  });

  test('no id: CLIENT.BAD_ARGUMENT, nothing sent', async () => {
    const { fake, bff } = setup();
    for (const id of ['', undefined, 42]) {
      await assert.rejects(bff.endSession(id), (err) => err.error_code === 'CLIENT.BAD_ARGUMENT');
    }
    assert.equal(fake.calls.length, 0);
  });

  test("this device's session: bff ends it, the client forgets the handle and the id_token", async () => {
    const { fake, bff } = setup();
    await bff.login();
    const handle = fake.storage.get('bff.handle');
    const mine = (await bff.listSessions()).find((s) => s.current);
    await bff.endSession(mine.id);
    assert.equal(fake.storage.get('bff.handle'), undefined);
    assert.ok(fake.revoked.has(handle));
    await bff.getIdToken(); // not from memory: a new handle, then a refresh
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('an id listed for an older handle is no longer this device: the new handle stays', async () => {
    const { fake, bff } = setup();
    await bff.login();
    const old = fake.storage.get('bff.handle');
    const mine = (await bff.listSessions()).find((s) => s.current);
    fake.handles.delete(old); // expired on the server: the next call gets a new handle
    await bff.sessionStatus();
    const renewed = fake.storage.get('bff.handle');
    assert.notEqual(renewed, old);
    fake.handles.add(old); // still listed, say: ending it ends the old one only
    await bff.endSession(mine.id);
    assert.equal(fake.storage.get('bff.handle'), renewed);
  });
});

describe('401 BFF.SESSION_REVOKED from bff (signed out on another device)', () => {
  test('rejects with that code; the handle and the id_token are dropped, no new handle', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.revoke(fake.storage.get('bff.handle'));
    const err = await bff.sessionStatus().catch((e) => e);
    assert.equal(err.error_code, 'BFF.SESSION_REVOKED');
    assert.equal(err.status, 401);
    assert.ok(err.request_id);
    assert.equal(fake.storage.get('bff.handle'), undefined);
    assert.equal(fake.count('POST /wechat/session'), 1); // not signed in again behind the page's back
    assert.equal(fake.count('GET /session'), 1);
    assert.equal(fake.loginCalls, 2); // the first handle's code and login's: none since
    // The next call is the app's choice: a new handle then (and the id_token from the server).
    await bff.getIdToken();
    assert.equal(fake.count('POST /wechat/session'), 2);
    assert.equal(fake.count('POST /session/refresh'), 1);
  });

  test('on a sign-in call too: login() rejects, the next login() starts afresh', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.revoke(fake.storage.get('bff.handle'));
    await assert.rejects(bff.login(), (err) => err.is('BFF.SESSION_REVOKED'));
    assert.equal(fake.count('POST /login'), 2);
    assert.equal((await bff.login()).status, 'SUCCESS');
    assert.equal(fake.count('POST /wechat/session'), 2);
  });

  test('logout with a revoked handle: rejects with it; nothing is left either way', async () => {
    const { fake, bff } = setup();
    await bff.login();
    fake.revoke(fake.storage.get('bff.handle'));
    await assert.rejects(bff.logout(), (err) => err.is('BFF.SESSION_REVOKED'));
    assert.equal(fake.storage.get('bff.handle'), undefined);
  });

  test('a revocation that arrives after another call stored a newer handle keeps that one', async () => {
    const { fake, bff } = setup();
    await bff.sessionStatus();
    const old = fake.storage.get('bff.handle');
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    fake.routes['GET /captcha'] = async () => {
      await held;
      return fake.envelope(401, 'BFF.SESSION_REVOKED');
    };
    const captcha = bff.getCaptcha().catch((e) => e);
    fake.handles.delete(old); // meanwhile the session call gets 401 BFF.UNAUTHENTICATED: renewed
    await bff.sessionStatus();
    const renewed = fake.storage.get('bff.handle');
    assert.notEqual(renewed, old);
    release();
    assert.equal((await captcha).error_code, 'BFF.SESSION_REVOKED');
    assert.equal(fake.storage.get('bff.handle'), renewed);
  });

  test('never retried, even on a route that is safe to repeat', async () => {
    const { fake, clock, bff } = setup();
    fake.routes['POST /session/refresh'] = () => fake.envelope(401, 'BFF.SESSION_REVOKED');
    await assert.rejects(bff.refresh(), (err) => err.is('BFF.SESSION_REVOKED'));
    assert.equal(fake.count('POST /session/refresh'), 1);
    assert.equal(clock.sleeps.length, 0);
  });
});
