/**
 * password-policy.js: the tenant's password policy as a PASSWORD_WARN / PASSWORD_EXPIRED outcome
 * brings it, and a new password checked against it on the phone, before anything is sent. Pure.
 * bff checks again (400 BFF.PASSWORD_POLICY); the local check only spares a round trip.
 */
'use strict';

const { clientError } = require('./errors.js');
const { asRecord } = require('./wire.js');

/** @typedef {import('../bff-client').PasswordPolicy} PasswordPolicyT */
/** @typedef {import('./errors.js').BffError} BffError */

/** A non-negative integer, else undefined. @param {unknown} v */
function count(v) {
  return typeof v === 'number' && isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

/**
 * The known fields of an answer's `password_policy`, checked; null when it has none.
 * @param {unknown} value @returns {PasswordPolicyT | null}
 */
function readPolicy(value) {
  const body = asRecord(value);
  if (!body) return null;
  /** @type {PasswordPolicyT} */
  const policy = {};
  const min = count(body.min_length);
  const max = count(body.max_length);
  if (min !== undefined) policy.min_length = min;
  if (max !== undefined) policy.max_length = max;
  if (typeof body.pattern === 'string' && body.pattern) policy.pattern = body.pattern;
  return policy;
}

/** The pattern as a JS RegExp; null when JS cannot read it (then bff alone decides). @param {string} p */
function compiled(p) {
  try {
    return new RegExp(p);
  } catch (e) {
    return null;
  }
}

const MESSAGES = {
  en: {
    min: (/** @type {number} */ n) => 'at least ' + n + ' characters',
    max: (/** @type {number} */ n) => 'at most ' + n + ' characters',
    pattern: () => 'does not have the characters the password policy asks for',
  },
  zh: {
    min: (/** @type {number} */ n) => '至少 ' + n + ' 个字符',
    max: (/** @type {number} */ n) => '最多 ' + n + ' 个字符',
    pattern: () => '不符合密码规则要求的字符组成',
  },
};

/**
 * What is wrong with `password` under `policy` (in `lang`: `zh…` Chinese, else English); [] when
 * nothing is. Lengths count characters (code points), as bff does; `pattern` must match somewhere
 * in the password (a search, not a full match).
 * @param {PasswordPolicyT} policy @param {string} password @param {string} lang
 * @returns {string[]}
 */
function policyProblems(policy, password, lang) {
  const m = /^zh/i.test(lang) ? MESSAGES.zh : MESSAGES.en;
  const length = Array.from(password).length;
  const problems = [];
  if (policy.min_length !== undefined && length < policy.min_length) problems.push(m.min(policy.min_length));
  if (policy.max_length !== undefined && length > policy.max_length) problems.push(m.max(policy.max_length));
  const re = policy.pattern ? compiled(policy.pattern) : null;
  if (re && !re.test(password)) problems.push(m.pattern());
  return problems;
}

/**
 * The error bff would answer (400 BFF.PASSWORD_POLICY, `errors.new_password`), made on the phone:
 * `status` 0 and no request_id, since nothing was sent. Null when the password fits.
 * @param {PasswordPolicyT | null} policy @param {string} password @param {string} lang
 * @returns {BffError | null}
 */
function policyError(policy, password, lang) {
  if (!policy) return null;
  const problems = policyProblems(policy, password, lang);
  if (problems.length === 0) return null;
  const err = clientError('BFF.PASSWORD_POLICY', problems.join('; '));
  err.errors = { new_password: problems };
  return err;
}

module.exports = { readPolicy, policyProblems, policyError };
