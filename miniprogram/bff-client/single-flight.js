/**
 * single-flight.js: calls that overlap share one promise (one wechat/session call, one refresh
 * at a time, whoever asks).
 */
'use strict';

/**
 * Where the promise in flight is kept (null when none is).
 * @template T
 * @typedef {{ promise: Promise<T> | null }} Slot
 */

/**
 * The promise in `slot`, or a new one from `start()`. When it settles the slot is freed first,
 * then `onValue` maps the value (it may throw) or `onError` looks at the error (rethrown).
 * The hooks of a call that finds a promise in flight are not used.
 * @template S, T
 * @param {Slot<T>} slot
 * @param {() => Promise<S>} start
 * @param {(value: S) => T} onValue
 * @param {(err: unknown) => void} [onError]
 * @returns {Promise<T>}
 */
function singleFlight(slot, start, onValue, onError) {
  if (!slot.promise) {
    slot.promise = start().then(
      (value) => {
        slot.promise = null;
        return onValue(value);
      },
      (err) => {
        slot.promise = null;
        if (onError) onError(err);
        throw err;
      },
    );
  }
  return slot.promise;
}

module.exports = { singleFlight };
