/**
 * storage.js: the few values the client keeps in wx storage (the handle, the device
 * fingerprint), read and written so that a storage that throws costs the value, never the call.
 */
'use strict';

/** @typedef {import('../bff-client').StorageLike} StorageLikeT */

/** @param {StorageLikeT} storage @param {string} key @returns {string | null} */
function readStored(storage, key) {
  try {
    const value = storage.getStorageSync(key);
    return typeof value === 'string' && value ? value : null;
  } catch (e) {
    return null;
  }
}

/** @param {StorageLikeT} storage @param {string} key @param {string} value */
function writeStored(storage, key, value) {
  try {
    storage.setStorageSync(key, value);
  } catch (e) {
    // Storage full or unavailable: the value serves this call only; the next one asks again.
  }
}

/** @param {StorageLikeT} storage @param {string} key */
function removeStored(storage, key) {
  try {
    if (typeof storage.removeStorageSync === 'function') storage.removeStorageSync(key);
    else storage.setStorageSync(key, '');
  } catch (e) {
    // nothing to clean up then
  }
}

module.exports = { readStored, writeStored, removeStored };
