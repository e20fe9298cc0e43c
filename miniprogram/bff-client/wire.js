/**
 * wire.js: small pure helpers for what goes over the wire: reading wx.request's answers
 * (bodies, headers, Retry-After) and writing header values bff accepts.
 */
'use strict';

/** @typedef {{ [key: string]: unknown }} Json */

/** @param {unknown} value @returns {Json | null} */
function asRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? /** @type {Json} */ (value)
    : null;
}

/** wx.request parses JSON when it can; an HTML 502 from a proxy stays text. @param {unknown} data */
function parseBody(data) {
  if (typeof data !== 'string') return data;
  if (data === '') return null;
  try {
    return JSON.parse(data);
  } catch (e) {
    return data;
  }
}

/**
 * Case-insensitive header lookup (wx keeps the server's spelling).
 * @param {unknown} headers
 * @param {string} name
 */
function headerValue(headers, name) {
  const all = asRecord(headers);
  if (!all) return undefined;
  const wanted = name.toLowerCase();
  const key = Object.keys(all).find((k) => k.toLowerCase() === wanted);
  if (key === undefined) return undefined;
  const value = all[key];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** `Retry-After`: seconds (or an HTTP date). @param {string | undefined} value @param {number} nowMs */
function parseRetryAfter(value, nowMs) {
  if (value === undefined || value.trim() === '') return null;
  const seconds = Number(value);
  if (isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return isNaN(at) ? null : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** @param {number} bytes */
function randomHex(bytes) {
  let out = '';
  for (let i = 0; i < bytes; i++) out += ('0' + Math.floor(Math.random() * 256).toString(16)).slice(-2);
  return out;
}

/** Header values: printable ASCII, at most 512 characters (bff refuses anything else). */
function headerSafe(/** @type {unknown} */ value, /** @type {string} */ fallback) {
  const text = value === undefined || value === null ? '' : String(value);
  const clean = text
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 512);
  return clean || fallback;
}

module.exports = { asRecord, parseBody, headerValue, parseRetryAfter, randomHex, headerSafe };
