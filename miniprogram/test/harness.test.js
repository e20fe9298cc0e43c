'use strict';
// The end-to-end harness itself (test/support/devserver.js), with a stand-in dev server: the
// ports it finds, the environment it passes, and that stop() leaves no process behind.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { startDevServer } = require('./support/devserver');

const FAKE = [process.execPath, path.join(__dirname, 'fixtures', 'fake-devserver.js')];
const SLOW = { timeout: 30000 };

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a dev server on its fixed ports: the ports its walk-through prints are used', SLOW, async () => {
  const server = await startDevServer({ command: FAKE, env: { FAKE_MODE: 'fixed' } });
  try {
    assert.equal(server.envPortsHonoured, false);
    assert.notEqual(server.ports.bff, server.requested.bff);
    assert.equal(server.baseUrl, `http://127.0.0.1:${server.ports.bff}`);
    assert.equal(server.idaasUrl, `http://127.0.0.1:${server.ports.bff + 1}`);
    assert.equal(server.wechatUrl, `http://127.0.0.1:${server.ports.bff + 2}`);
  } finally {
    await server.stop();
  }
});

test(
  'a dev server that reads BFF_DEV_*PORT: the free ports picked here, bff settings scrubbed',
  SLOW,
  async () => {
    process.env.REDIS_URL = 'redis://127.0.0.1:6379/0'; // the caller's own bff settings stay out
    process.env.RATE_LIMIT_LOGIN = '1/minute';
    let server;
    try {
      server = await startDevServer({ command: FAKE, env: { FAKE_MODE: 'honours', HANDLE_TTL_S: '2' } });
    } finally {
      delete process.env.REDIS_URL;
      delete process.env.RATE_LIMIT_LOGIN;
    }
    try {
      assert.equal(server.envPortsHonoured, true);
      assert.deepEqual(server.ports, server.requested);
      assert.equal(new Set(Object.values(server.requested)).size, 4);
      const env = await (await fetch(`${server.baseUrl}/env`)).json();
      assert.equal(env.BFF_ENV, 'development');
      assert.equal(env.BFF_DEV_PORT, String(server.requested.bff));
      assert.equal(env.BFF_DEV_IDAAS_PORT, String(server.requested.idaas));
      assert.equal(env.BFF_DEV_WECHAT_PORT, String(server.requested.wechat));
      assert.equal(env.BFF_DEV_REDIS_PORT, String(server.requested.redis));
      assert.equal(env.HANDLE_TTL_S, '2');
      assert.equal(env.REDIS_URL, undefined);
      assert.equal(env.RATE_LIMIT_LOGIN, undefined);
    } finally {
      await server.stop();
    }
    assert.equal(alive(server.pid), false);
  },
);

test('stop(): SIGINT ignored, then SIGKILL for the whole process group', SLOW, async () => {
  const server = await startDevServer({
    command: FAKE,
    env: { FAKE_MODE: 'honours', FAKE_IGNORE_SIGINT: '1' },
  });
  const grandchild = Number(/grandchild (\d+)/.exec(server.output())[1]);
  assert.ok(alive(grandchild));
  await server.stop();
  assert.equal(alive(server.pid), false);
  for (let i = 0; i < 50 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(grandchild), false);
});

test('a dev server that dies at start: the error shows its output', SLOW, async () => {
  await assert.rejects(
    startDevServer({ command: FAKE, env: { FAKE_MODE: 'crash' } }),
    /exited .*before it was ready:\s+bff: \[Errno 98\] Address already in use/s,
  );
});
