/**
 * steps.js: the next steps a login or bind may leave pending instead of SUCCESS: the second
 * factor (MFA_AUTH: GET /mfa, POST /mfa/codes, POST /mfa/verify) and the password steps
 * (PASSWORD_WARN: skip or change; PASSWORD_EXPIRED: change). The calls that finish a step answer
 * a login outcome and go through signIn, like the binds. None is retried (each spends the step,
 * or an SMS), but GET /mfa.
 */
'use strict';

const { clientError, isCode } = require('./errors.js');
const { asRecord } = require('./wire.js');
const { ROUTES } = require('./routes.js');
const { perform } = require('./perform.js');
const { deviceHeaders } = require('./device.js');
const { signIn } = require('./sign-in.js');
const { policyError } = require('./password-policy.js');

/** @typedef {import('./context.js').Context} Context */
/** @typedef {import('../bff-client').MfaResponse} MfaResponseT */
/** @typedef {import('../bff-client').CaptchaAnswer} CaptchaAnswerT */
/** @typedef {import('../bff-client').Outcome} OutcomeT */

/**
 * `work()`, and after 409 BFF.NO_PENDING_STEP (none, expired, or finished already) the password
 * policy forgotten: no step is left for it.
 * @template T @param {Context} ctx @param {() => Promise<T>} work @returns {Promise<T>}
 */
async function onStep(ctx, work) {
  try {
    return await work();
  } catch (err) {
    if (isCode(err, 'BFF.NO_PENDING_STEP')) ctx.passwordPolicy = null;
    throw err;
  }
}

/** GET /mfa: the pending second factor and where its code goes, masked. @param {Context} ctx */
function mfaInfo(ctx) {
  return onStep(ctx, async () => {
    const body = asRecord(await perform(ctx, ROUTES.mfa));
    if (!body || typeof body.factor !== 'string' || typeof body.destination !== 'string') {
      throw clientError('CLIENT.BAD_RESPONSE', 'mfa answered no factor and destination');
    }
    /** @type {MfaResponseT} */
    const out = { factor: body.factor, destination: body.destination };
    return out;
  });
}

/**
 * POST /mfa/codes with a solved slider (never retried: it costs an SMS).
 * @param {Context} ctx @param {CaptchaAnswerT} captcha
 */
function sendMfaCode(ctx, captcha) {
  return onStep(ctx, async () => {
    const c = captcha || /** @type {CaptchaAnswerT} */ ({});
    await perform(ctx, ROUTES.sendMfaCode, () => ({ captcha: { token: c.token, point_json: c.point_json } }));
  });
}

/** POST /mfa/verify: the code the user received. @param {Context} ctx @param {string} code */
function verifyMfa(ctx, code) {
  return onStep(ctx, () => signIn(ctx, ROUTES.verifyMfa, () => ({ verify_code: code })));
}

/** POST /password/skip (PASSWORD_WARN only). @param {Context} ctx */
function skipPasswordChange(ctx) {
  return onStep(ctx, () => signIn(ctx, ROUTES.skipPassword));
}

/**
 * POST /password/change. A new password that breaks the policy the outcome named is refused
 * here, as bff would refuse it (BFF.PASSWORD_POLICY, `errors.new_password`), with nothing sent.
 * The passwords go into the request body only: never stored, never logged.
 * @param {Context} ctx @param {string} oldPassword @param {string} newPassword
 * @returns {Promise<OutcomeT>}
 */
async function changePassword(ctx, oldPassword, newPassword) {
  if (typeof newPassword === 'string') {
    const refused = policyError(ctx.passwordPolicy, newPassword, deviceHeaders(ctx)['X-L']);
    if (refused) throw refused;
  }
  return onStep(ctx, () =>
    signIn(ctx, ROUTES.changePassword, () => ({ old_password: oldPassword, new_password: newPassword })),
  );
}

module.exports = { mfaInfo, sendMfaCode, verifyMfa, skipPasswordChange, changePassword };
