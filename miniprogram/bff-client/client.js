/**
 * client.js: createBffClient(options), the client's methods, each one line over the parts:
 * sign-in.js (login, binds, registers), steps.js (MFA and the password steps), session.js
 * (refresh, id_token, session, logout, unbind), sessions.js (the user's devices), api.js (the
 * company's APIs), and the slider and the code send below.
 */
'use strict';

const { clientError } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { ROUTES } = require('./routes.js');
const { createContext } = require('./context.js');
const { perform } = require('./perform.js');
const { wxLoginCode } = require('./wx-login.js');
const { signIn } = require('./sign-in.js');
const { refresh, getIdToken, sessionStatus, logout, unbindWechat } = require('./session.js');
const { mfaInfo, sendMfaCode, verifyMfa, skipPasswordChange, changePassword } = require('./steps.js');
const { listSessions, endSession } = require('./sessions.js');
const { callApi } = require('./api.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('./wire.js').Json} Json */
/** @typedef {import('../bff-client').VerificationCodesRequest} VerificationCodesRequestT */

/** @param {{ mobile?: string, email?: string }} destination @param {string} verifyCode */
function codeBody(destination, verifyCode) {
  /** @type {Json} */
  const body = { verify_code: verifyCode };
  if (destination && destination.mobile !== undefined) body.mobile = destination.mobile;
  if (destination && destination.email !== undefined) body.email = destination.email;
  return body;
}

/** GET /captcha: a slider for sendCode. @param {Context} ctx */
async function getCaptcha(ctx) {
  const body = asRecord(await perform(ctx, ROUTES.captcha));
  if (!body || typeof body.token !== 'string') {
    throw clientError('CLIENT.BAD_RESPONSE', 'captcha answered no token');
  }
  return /** @type {import('../bff-client').CaptchaResponse} */ (/** @type {unknown} */ (body));
}

/**
 * POST /verification-codes (never retried: it costs an SMS).
 * @param {Context} ctx
 * @param {VerificationCodesRequestT} request
 */
async function sendCode(ctx, request) {
  await perform(ctx, ROUTES.sendCode, () => ({
    channel: request.channel,
    to: request.to,
    purpose: request.purpose,
    captcha: { token: request.captcha.token, point_json: request.captcha.point_json },
  }));
}

/**
 * @param {import('../bff-client').BffClientOptions} options
 * @returns {import('../bff-client').BffClient}
 */
function createBffClient(options) {
  const ctx = createContext(options);
  return {
    login: () => signIn(ctx, ROUTES.login, async () => ({ code: await wxLoginCode(ctx.config.login) })),
    loginWithPhone: (phoneCode) => signIn(ctx, ROUTES.loginPhone, () => ({ phone_code: phoneCode })),
    bindWithPassword: (userName, password) =>
      signIn(ctx, ROUTES.bindPassword, () => ({ user_name: userName, password })),
    bindWithWechatPhone: (phoneCode) =>
      signIn(ctx, ROUTES.bindWechatPhone, () => ({ phone_code: phoneCode })),
    bindWithCode: (destination, verifyCode) =>
      signIn(ctx, ROUTES.bindCode, () => codeBody(destination, verifyCode)),
    registerWithWechatPhone: (phoneCode) =>
      signIn(ctx, ROUTES.registerWechatPhone, () => ({ phone_code: phoneCode })),
    registerWithCode: (destination, verifyCode) =>
      signIn(ctx, ROUTES.registerCode, () => codeBody(destination, verifyCode)),
    getCaptcha: () => getCaptcha(ctx),
    sendCode: (request) => sendCode(ctx, request),
    mfaInfo: () => mfaInfo(ctx),
    sendMfaCode: (captcha) => sendMfaCode(ctx, captcha),
    verifyMfa: (code) => verifyMfa(ctx, code),
    skipPasswordChange: () => skipPasswordChange(ctx),
    changePassword: (oldPassword, newPassword) => changePassword(ctx, oldPassword, newPassword),
    refresh: () => refresh(ctx),
    getIdToken: () => getIdToken(ctx),
    sessionStatus: () => sessionStatus(ctx),
    logout: () => logout(ctx),
    unbindWechat: () => unbindWechat(ctx),
    listSessions: () => listSessions(ctx),
    endSession: (id) => endSession(ctx, id),
    callApi: (request) => callApi(ctx, request),
  };
}

module.exports = { createBffClient };
