'use strict';
// Starts bff in development mode (`python -m bff`, what `make run` does: an in-process Redis
// stand-in, the IDaaS and WeChat simulators and bff, all on 127.0.0.1) for the end-to-end tests,
// and drives the simulators' /_sim/ control routes.
//
// What it expects of the dev server:
//  - it reads BFF_DEV_PORT, BFF_DEV_IDAAS_PORT, BFF_DEV_WECHAT_PORT, BFF_DEV_REDIS_PORT (free
//    ports picked here; 0 is not supported there). A dev server that does not read them yet
//    listens on its fixed ports and prints them: the first line of its walk-through,
//    "bff (development) on http://127.0.0.1:<bff>  -  IDaaS simulator :<idaas>, WeChat simulator
//    :<wechat>", is taken over the requested ports when it differs;
//  - `GET /readyz` answers 200 once it serves;
//  - SIGINT to its process group stops it (SIGKILL follows after a grace period).
// Every bff setting of the caller's environment (REDIS_URL, IDAAS_*, RATE_LIMIT_*, ...) is
// removed, so the embedded parts are used; tests pass their own in `env`.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');
const SETTINGS =
  /^(BFF_|IDAAS_|REDIS_|WECHAT_|GATEWAY_|RATE_LIMIT_|CIRCUIT_|LOG_|GUNICORN_)|^(IDENTITY_SOURCE|HANDLE_TTL_S|STATE_TOKEN_TTL_S|TRUSTED_PROXY_COUNT|MAX_BODY_BYTES|PROMETHEUS_MULTIPROC_DIR)$/;
const WALKTHROUGH =
  /bff \(development\) on http:\/\/127\.0\.0\.1:(\d+)\s+-\s+IDaaS simulator :(\d+), WeChat simulator :(\d+)/;
const GRACE_MS = 3000; // SIGINT, then SIGKILL (see the note in stop())
const OUTPUT_KEEP = 64 * 1024;

const running = new Set();
process.on('exit', () => {
  // Last resort (a test crashed before its after hook): no dev server outlives the test run.
  for (const server of running) server.kill('SIGKILL');
});

/** The Python that runs bff: BFF_PYTHON, else the repository's .venv (`make install`). */
function pythonPath() {
  if (process.env.BFF_PYTHON) return process.env.BFF_PYTHON;
  const venv = path.join(REPO, '.venv', 'bin', 'python');
  if (!fs.existsSync(venv)) {
    throw new Error(`no ${venv}: run \`make install\` in ${REPO} first (or set BFF_PYTHON)`);
  }
  return venv;
}

/** A port nobody listens on right now (bound on 127.0.0.1:0, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function isReady(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Start a dev server; resolves once /readyz is 200.
 * @param {{ env?: Record<string, string>, readyTimeoutMs?: number, command?: string[] }} [opts]
 *   `command` replaces `python -m bff` (test/harness.test.js runs a stand-in).
 */
async function startDevServer(opts = {}) {
  const readyTimeoutMs = opts.readyTimeoutMs || 30000;
  const [bff, idaas, wechat, redis] = await freePorts(4);
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!SETTINGS.test(k)) env[k] = v;
  Object.assign(
    env,
    {
      BFF_ENV: 'development',
      BFF_DEV_PORT: String(bff),
      BFF_DEV_IDAAS_PORT: String(idaas),
      BFF_DEV_WECHAT_PORT: String(wechat),
      BFF_DEV_REDIS_PORT: String(redis),
      PYTHONUNBUFFERED: '1',
    },
    opts.env || {},
  );
  const [exe, ...args] = opts.command || [pythonPath(), '-m', 'bff'];
  const child = spawn(exe, args, {
    cwd: REPO,
    env,
    detached: true, // its own process group: stop() signals the group
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  let printed = null;
  const keep = (chunk) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_KEEP);
    const m = !printed && WALKTHROUGH.exec(output);
    if (m) printed = { bff: Number(m[1]), idaas: Number(m[2]), wechat: Number(m[3]) };
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      running.delete(child);
      resolve();
    });
  });

  const exitWithin = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      exited.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  const server = {
    pid: child.pid,
    requested: { bff, idaas, wechat, redis },
    ports: null,
    output: () => output,
    async stop() {
      // Today's dev server does not exit on SIGINT once bff has talked to its Redis stand-in
      // (fakeredis's connection threads are not daemon threads), so SIGKILL usually ends it.
      if (exitInfo) return;
      signalGroup(child, 'SIGINT');
      await exitWithin(GRACE_MS);
      if (!exitInfo) {
        signalGroup(child, 'SIGKILL');
        await exitWithin(GRACE_MS);
      }
    },
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exitInfo) {
      throw new Error(
        `the dev server exited (${JSON.stringify(exitInfo)}) before it was ready:\n${output.slice(-4000)}`,
      );
    }
    const ports = printed || { bff, idaas, wechat };
    if (await isReady(ports.bff)) {
      server.ports = { ...ports, redis: printed && printed.bff !== bff ? null : redis };
      break;
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`the dev server was not ready within ${readyTimeoutMs} ms:\n${output.slice(-4000)}`);
    }
    await delay(100);
  }
  server.baseUrl = `http://127.0.0.1:${server.ports.bff}`;
  server.idaasUrl = `http://127.0.0.1:${server.ports.idaas}`;
  server.wechatUrl = `http://127.0.0.1:${server.ports.wechat}`;
  server.envPortsHonoured = server.ports.bff === bff;
  server.sim = simulators(server);
  return server;
}

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal); // the group: bff and anything it started
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** The simulators' /_sim/ control routes (docs/miniprogram.md, "Testing against the simulators"). */
function simulators(server) {
  async function call(base, method, path, body) {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  return {
    /** A wx.login code for that WeChat user (openid). */
    wxCode: async (openid) => (await call(server.wechatUrl, 'POST', '/_sim/wx-login', { openid })).code,
    /** The phone-number button's code for that mobile. */
    phoneCode: async (mobile) => (await call(server.idaasUrl, 'POST', '/_sim/phone-code', { mobile })).code,
    addUser: (user) => call(server.idaasUrl, 'POST', '/_sim/users', user),
    /** Tenant switches, e.g. { tenant_status: 'USER_REGISTER' }. */
    config: (knobs) => call(server.idaasUrl, 'PUT', '/_sim/config', knobs),
    captchaAnswer: async (token) => (await call(server.idaasUrl, 'GET', '/_sim/captcha-answers'))[token],
    inbox: () => call(server.idaasUrl, 'GET', '/_sim/inbox'),
  };
}

module.exports = { startDevServer, freePort, REPO };
