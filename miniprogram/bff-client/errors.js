/**
 * errors.js: BffError, the one error every method rejects with, and isCode.
 */
'use strict';

/** @param {string} actual @param {string} code */
function codeMatches(actual, code) {
  // IDaaS codes differ by tenant: IDAAS.SDK.LOGIN.1005 (CIAM) and SDK.LOGIN.1005 (EIAM).
  return actual === code || (actual.length > code.length && actual.endsWith('.' + code));
}

/**
 * The one error of this module: bff's error envelope (or a CLIENT.* code when no answer came).
 * Branch on `error_code` (or `is(code)`), never on `error_msg`.
 */
class BffError extends Error {
  /**
   * @param {{ error_code: string, error_msg?: string, request_id?: string, status?: number,
   *           retry_after?: number | null, errors?: { [field: string]: unknown } }} fields
   */
  constructor(fields) {
    super(fields.error_msg || fields.error_code);
    // A transpiled `class extends Error` (the IDE's ES5 output) loses the prototype: restore it.
    Object.setPrototypeOf(this, BffError.prototype);
    this.name = 'BffError';
    this.error_code = fields.error_code;
    this.error_msg = fields.error_msg || '';
    this.request_id = fields.request_id || '';
    this.retry_after = typeof fields.retry_after === 'number' ? fields.retry_after : null;
    this.status = fields.status || 0;
    /** @type {{ [field: string]: unknown } | undefined} */
    this.errors = fields.errors;
    /** @type {boolean | undefined} */
    this.session_active = undefined;
  }

  /** @param {string} code */
  is(code) {
    return codeMatches(this.error_code, code);
  }
}

/** @param {unknown} err @param {string} code */
function isCode(err, code) {
  return err instanceof BffError && err.is(code);
}

/** A CLIENT.* error. @param {string} code @param {string} message @param {string} [requestId] */
function clientError(code, message, requestId) {
  return new BffError({ error_code: code, error_msg: message, request_id: requestId });
}

module.exports = { BffError, isCode, clientError };
