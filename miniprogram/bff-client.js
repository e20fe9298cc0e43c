/**
 * bff-client.js: the WeChat mini program's client for bff, the login backend-for-frontend.
 *
 * No dependencies, CommonJS, ES2017 (turn on "Enhanced compile" / 增强编译 for async/await on
 * old base libraries). This file is the entry; its parts are in bff-client/, one concern each.
 * Copy both, this file and the folder beside it (and bff-client.d.ts for TypeScript), into the
 * mini program, then:
 *
 *   const { createBffClient, nextStep } = require('./bff-client');
 *   const bff = createBffClient({ baseUrl: 'https://api.example.com' });
 *
 *   const out = await bff.login();                  // wx.login → wechat/session → login
 *   if (nextStep(out).step === 'BIND') await bff.bindWithPassword(userName, password);
 *   // MFA_AUTH: mfaInfo(), sendMfaCode(slider), verifyMfa(code); PASSWORD_WARN: skipPasswordChange()
 *   // or changePassword(old, new); PASSWORD_EXPIRED: changePassword(old, new)
 *   const idToken = await bff.getIdToken();         // for your other APIs, refreshed in time
 *   const res = await bff.callApi({ url: '/orders' }); // or behind the gateway, with the handle
 *   const devices = await bff.listSessions();       // endSession(id) signs one out
 *   await bff.logout();                             // unbindWechat(): unbinds, and signs out too
 *
 * What it does so the pages don't have to (the guide is docs/miniprogram.md):
 *  - the handle: obtained on first use (wx.login → POST /wechat/session), kept in wx storage and
 *    nowhere else, re-obtained once when bff answers 401 BFF.UNAUTHENTICATED; concurrent calls
 *    share one wechat/session call; dropped (and the id_token with it, nothing re-obtained)
 *    when bff answers 401 BFF.SESSION_REVOKED: signed out on another device;
 *  - the id_token: memory only (never storage), refreshed shortly before it expires, one refresh
 *    at a time; BFF.SESSION_EXPIRED forgets it and means "sign in again";
 *  - the device headers (X-operating-sys-version, X-device-fingerprint, X-agent, X-L) on every
 *    call, and an X-Request-ID per request that support can look up in bff's logs;
 *  - errors: one BffError with error_code, error_msg, request_id, retry_after;
 *  - retries: 429, 503 and 409 BFF.REQUEST_IN_PROGRESS are retried after Retry-After (or a short
 *    backoff) only on calls that are safe to repeat: wechat/session and login (a fresh wx.login
 *    code each time), refresh, GET /session, logout, captcha, sessions, GET /mfa. Never a bind,
 *    a register, a phone-number login (its code is single-use), a code send (it costs an SMS),
 *    a step's finish (MFA verify, password skip or change) or the unbind;
 *  - the password steps: a new password checked against the outcome's password_policy before
 *    it is sent (BFF.PASSWORD_POLICY, as bff answers it); passwords are never kept or logged;
 *  - a request timeout (40 s) above bff's worst case, and after a lost answer to a sign-in call
 *    (timeout, network), GET /session tells whether it went through before anything is retried;
 *  - callApi: the company's APIs behind the same gateway, with the handle (only to baseUrl's
 *    origin); the gateway's 401/403 (X-BFF-Error) are BffErrors, every other answer is returned.
 */
'use strict';

// The parts, in the order a reader may take them (each requires only those above it):
//   errors.js       BffError, isCode: the one error of every method
//   wire.js         pure helpers for bodies, headers, Retry-After
//   jwt.js          an id_token's lifetime from its claims
//   next-step.js    nextStep(outcome): what the UI does next
//   password-policy.js  a pending password step's policy, and a new password checked against it
//   routes.js       bff's routes and which are safe to repeat
//   options.js      createBffClient's options and their defaults (the Config)
//   single-flight.js, storage.js, context.js  one promise per slot; wx storage; the client's state
//   device.js       the device headers
//   transport.js    one HTTP exchange, with its timeout
//   retry.js        a call sent again: after a 401 with a new handle, after 409/429/503
//   id-token.js     the id_token in memory
//   wx-login.js, handle.js, perform.js  wx.login codes; the handle; a call with every policy
//   session.js, sign-in.js  refresh/session/logout/unbind; sign-ins
//   steps.js        the next steps: MFA (second factor), the password steps (skip, change)
//   sessions.js, api.js  the user's sessions (devices); the company's APIs behind the gateway
//   client.js       createBffClient: the methods
// Every require names its file with `.js`: no lookup of folders or extensions is needed.
const { BffError, isCode } = require('./bff-client/errors.js');
const { nextStep } = require('./bff-client/next-step.js');
const { DEFAULT_TIMEOUT_MS, VERSION } = require('./bff-client/options.js');
const { createBffClient } = require('./bff-client/client.js');

/** @type {typeof import('./bff-client')} */
const api = { createBffClient, BffError, isCode, nextStep, DEFAULT_TIMEOUT_MS, VERSION };
module.exports = api;
