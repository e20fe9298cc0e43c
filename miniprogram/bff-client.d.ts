// Type declarations of bff-client.js, the WeChat mini program's client for bff.
//
// Two kinds of types live here:
//  - wire types, named exactly like the schemas of bff's `GET /openapi.json` (`LoginResponse`,
//    `VerificationCodesRequest`, ...). test/contract.test.js checks every field of every schema a
//    mini-program route uses against this file, so these cannot drift from the service;
//  - the client's own surface (options, methods, the error), which bff-client.js and its parts
//    (bff-client/*.js) are type-checked against with `tsc --noEmit` (checkJs), together with
//    Tencent's miniprogram-api-typings.
//
// No dependency: the shapes of wx.request, wx.login and the storage calls are declared here
// structurally (test/types/wx-compat.ts proves Tencent's own `wx` fits them).

// ------------------------------------------------------------------------- wire types (/openapi.json)

/** `POST /api/v1/wechat/session` body. */
export interface WechatSessionRequest {
  wx_code: string;
  /** The mini program's appid, where the deployment serves several; absent: its default app. */
  appid?: string;
}

/** `POST /api/v1/wechat/session` answer (201). */
export interface WechatSessionResponse {
  handle: string;
  expires_in: number;
}

/** `POST /api/v1/login` body. */
export interface LoginRequest {
  code: string;
}

/** The outcome of login, login/phone, and every bind and register route, as bff sends it. */
export interface LoginResponse {
  /** `SUCCESS`, `SOCIAL_BIND`, `USER_REGISTER`, `MFA_AUTH`, `ACCESS_DENIED`, `PASSWORD_WARN`, ... */
  status: string;
  /** Seconds the server-side session lives (not the id_token's lifetime). */
  expire?: number;
  /** The verified id_token (SUCCESS, and any status that came with a session). */
  id_token?: string;
  /** SOCIAL_BIND / USER_REGISTER: the tenant's suggested routes, e.g. `["VERIFY_PHONE"]`. */
  flows?: string[];
  /** PASSWORD_WARN / PASSWORD_EXPIRED (a password step pending): the new password's rules. */
  password_policy?: PasswordPolicy;
}

/** The tenant's rules for a new password, each optional (`changePassword` checks them first). */
export interface PasswordPolicy {
  /** Fewest characters (code points). */
  min_length?: number;
  /** Most characters (code points). */
  max_length?: number;
  /** A regular expression the password must match somewhere (the IDaaS's, e.g. `^(?=.*[A-Za-z])(?=.*\d).+$`). */
  pattern?: string;
}

/** `GET /api/v1/mfa` answer: the pending MFA_AUTH step's second factor. */
export interface MfaResponse {
  /** How the code goes: `sms` (the IDaaS's tenants may add others, e.g. `email`). */
  factor: string;
  /** Where it goes, masked for display: `+86-152****7124`. */
  destination: string;
}

/** `POST /api/v1/mfa/codes` body: the slider of `GET /captcha`, solved. */
export interface MfaCodesRequest {
  captcha: CaptchaAnswer;
}

/** `POST /api/v1/mfa/verify` body. */
export interface MfaVerifyRequest {
  verify_code: string;
}

/** `POST /api/v1/password/change` body. */
export interface PasswordChangeRequest {
  old_password: string;
  new_password: string;
}

/** `POST /api/v1/bind/username-password` body. */
export interface BindUsernamePasswordRequest {
  user_name: string;
  password: string;
}

/** `POST /api/v1/login/phone`, `/bind/wechat-phone`, `/register/wechat-phone` body. */
export interface PhoneCodeRequest {
  /** The phone-number button's `e.detail.code` (not a wx.login code). */
  phone_code: string;
}

/** `POST /api/v1/bind/verification-code` and `/register/verification-code` body. */
export interface VerificationBindRequest {
  /** Exactly one of `mobile` and `email`. */
  mobile?: string;
  email?: string;
  verify_code: string;
}

/** `POST /api/v1/session/refresh` answer. */
export interface RefreshResponse {
  id_token: string;
  /** Seconds until the new id_token's `exp`. */
  expires_in: number;
}

/** `GET /api/v1/session` answer. */
export interface SessionStatusResponse {
  active: boolean;
  /** Seconds the server-side session still lives (when active). */
  expires_in?: number;
}

/** `GET /api/v1/captcha` answer (null fields are left out by bff). */
export interface CaptchaResponse {
  token: string;
  original_image_base64?: string;
  jigsaw_image_base64?: string;
  secret_key?: string;
}

/** The slider's answer. */
export interface CaptchaAnswer {
  token: string;
  /** A JSON *string* as the slider widget produces it, e.g. `"{\"x\":237.0,\"y\":5.0}"`. */
  point_json: string;
}

/** `POST /api/v1/verification-codes` body. */
export interface VerificationCodesRequest {
  channel: 'sms' | 'email';
  /** `+86-13800000000` (sms) or an e-mail address (email). */
  to: string;
  purpose: 'bind' | 'register';
  captcha: CaptchaAnswer;
}

/** One of the user's sessions: a device with a handle (`GET /api/v1/sessions`). */
export interface SessionInfo {
  /** 16 hex digits: the session's public name (`endSession(id)`); not the handle. */
  id: string;
  /** Unix seconds: when its handle was issued. */
  issued_at: number;
  /** Unix seconds: when it was last used (bff writes it at most once a minute). */
  last_used_at: number;
  /** The device's `X-operating-sys-version`, e.g. `ios iOS 17.4`. */
  os: string | null;
  /** The device's `X-agent`. */
  agent: string | null;
  /** The network the session was opened from, masked: `203.0.113.0/24`. */
  ip: string | null;
  /** True for the session of the handle this call was made with: this device. */
  current: boolean;
}

/** `GET /api/v1/sessions` answer. */
export interface SessionsResponse {
  sessions: SessionInfo[];
}

/** Every error answer of bff, its own or the IDaaS's. */
export interface ErrorResponse {
  error_code: string;
  error_msg: string;
  request_id: string;
  /** BFF.VALIDATION, BFF.PASSWORD_POLICY: the problems per field (`new_password: [messages]`). */
  errors?: { [field: string]: unknown };
  /** BFF.NOT_READY (`/readyz` only). */
  checks?: { [check: string]: string };
}

// ------------------------------------------------------------------------- the wx-shaped dependencies

/** wx.request's methods. bff's routes use GET, POST and DELETE; `callApi` takes any. */
export type HttpMethod = 'OPTIONS' | 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'TRACE' | 'CONNECT';

/** What the client passes to `request` (a subset of wx.request's options). */
export interface RequestOptions {
  url: string;
  method: HttpMethod;
  header: { [name: string]: string };
  /** To bff: a JSON body, sent as `application/json` (absent when the route takes none). */
  data?: string | ArrayBuffer | { [key: string]: unknown };
  /** `json` to bff; `callApi` passes the caller's. */
  dataType: string;
  /** `callApi` only, when the caller gives it. */
  responseType?: 'text' | 'arraybuffer';
  /** Milliseconds; `fail` is called with an errMsg containing "timeout" when it runs out. */
  timeout: number;
  success: (result: RequestResult) => void;
  fail: (error: { errMsg: string }) => void;
}

/** What `request` hands to `success` (a subset of wx.request's result). */
export interface RequestResult {
  statusCode: number;
  /** The parsed JSON body (or the raw text when it was not JSON). */
  data: unknown;
  header: { [name: string]: unknown };
}

/** wx.request's shape. The returned task, when it has `abort()`, is aborted after a timeout. */
export type RequestFunction = (options: RequestOptions) => unknown;

/** wx.login's shape (callbacks; a returned promise is ignored). */
export type LoginFunction = (options: {
  success: (result: { code: string }) => void;
  fail: (error: { errMsg: string }) => void;
}) => unknown;

/** The subset of wx's synchronous storage API the client uses (`wx` itself fits). */
export interface StorageLike {
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, value: string): void;
  removeStorageSync?(key: string): void;
}

/** The parts of `wx` the client reads when they are not injected. */
export interface WxLike {
  request?: RequestFunction;
  login?: LoginFunction;
  getStorageSync?(key: string): unknown;
  setStorageSync?(key: string, value: string): void;
  removeStorageSync?(key: string): void;
  getDeviceInfo?(): { platform?: string; system?: string; brand?: string; model?: string };
  getAppBaseInfo?(): { language?: string; version?: string; SDKVersion?: string };
  getSystemInfoSync?(): {
    platform?: string;
    system?: string;
    language?: string;
    version?: string;
    SDKVersion?: string;
  };
}

// ------------------------------------------------------------------------- the client

export interface RetryOptions {
  /** Retries after the first attempt, for calls that are safe to repeat. Default 2. */
  attempts?: number;
  /** First backoff step for a 503 without Retry-After, doubled each time. Default 500 ms. */
  baseDelayMs?: number;
  /** Longest wait before a retry; a longer Retry-After is not waited for but thrown. Default 5000. */
  maxDelayMs?: number;
}

export interface BffClientOptions {
  /** bff's address (the gateway in front of it), without `/api/v1`, e.g. `https://api.example.com`. */
  baseUrl: string;
  /** Default: `wx.request`. */
  request?: RequestFunction;
  /** Default: `wx` (getStorageSync / setStorageSync / removeStorageSync). Holds the handle only. */
  storage?: StorageLike;
  /** Default: `wx.login`. */
  login?: LoginFunction;
  /** Where the defaults and the device information come from. Default: the global `wx`. */
  wx?: WxLike;
  /** Per request, ms. Default 40000: above bff's worst case (docs/miniprogram.md, "Timeouts"). */
  timeoutMs?: number;
  /** Sent in `X-agent` before the WeChat and base library versions. Default `bff-client/<version>`. */
  agent?: string;
  /** `X-L`. Default: from the app's language (`zh` for any Chinese, else `en`). */
  language?: string;
  /** Prefix of the storage keys (`<prefix>.handle`, `<prefix>.fingerprint`). Default `bff`. */
  storagePrefix?: string;
  /** Refresh the id_token this many seconds before it expires (at most half its life). Default 60. */
  refreshMarginS?: number;
  retry?: RetryOptions;
  /** `false` when a gateway authenticates callers (IDENTITY_SOURCE=gateway): no handle at all. */
  handles?: boolean;
  /**
   * This mini program's appid, where one bff deployment serves several (sent once, in
   * `POST /wechat/session`; the handle names the app afterwards). Default: none, bff's default
   * app. `wx.getAccountInfoSync().miniProgram.appId` gives it.
   */
  appid?: string;
  /** The device clock, ms since the epoch (tests). Default `Date.now`. */
  now?: () => number;
  /** Waiting between retries (tests). Default: setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * `callApi`'s request: wx.request's options (without callbacks) for one of the company's APIs
 * behind the same gateway as bff.
 */
export interface ApiRequest {
  /**
   * A path, joined to `baseUrl` (`/orders/42` → `https://api.example.com/orders/42`), or a full
   * URL on `baseUrl`'s origin. Anything else is refused (`CLIENT.BAD_ARGUMENT`): the handle goes
   * to the gateway only.
   */
  url: string;
  /** Default `GET`. */
  method?: HttpMethod;
  data?: string | ArrayBuffer | { [key: string]: unknown };
  /**
   * Sent as given, plus `Authorization: Bearer <handle>` (replacing any of yours) and an
   * `X-Request-ID` unless you set one.
   */
  header?: { [name: string]: string };
  /** Milliseconds. Default: the client's `timeoutMs`. */
  timeout?: number;
  /** Default `json`. */
  dataType?: string;
  responseType?: 'text' | 'arraybuffer';
}

/** A login or bind outcome as the client returns it: bff's answer, `flows` always present. */
export interface Outcome {
  status: string;
  flows: string[];
  expire?: number;
  id_token?: string;
  /**
   * PASSWORD_WARN / PASSWORD_EXPIRED: the rules for the new password, when bff named them (show
   * them on the page; `changePassword` checks them before sending).
   */
  password_policy?: PasswordPolicy;
  /**
   * True when the answer was lost (timeout, network) but `GET /session` showed the user signed
   * in: the call went through. No id_token came; `getIdToken()` fetches one.
   */
  recovered?: boolean;
}

/**
 * Where to send the user after an outcome (`nextStep`): MFA is MFA_AUTH (the second-factor page),
 * PASSWORD_WARN (skip or change the password) and PASSWORD_EXPIRED (change it) their statuses.
 */
export type Step =
  | 'SIGNED_IN'
  | 'BIND'
  | 'BIND_OR_REGISTER'
  | 'MFA'
  | 'PASSWORD_WARN'
  | 'PASSWORD_EXPIRED'
  | 'BLOCKED';

/** The sign-in routes a bind screen can offer, best first (`nextStep(...).routes`). */
export type RouteName =
  | 'bind/wechat-phone'
  | 'bind/verification-code:sms'
  | 'bind/verification-code:email'
  | 'bind/username-password'
  | 'register/wechat-phone'
  | 'register/verification-code:sms'
  | 'register/verification-code:email';

export interface NextStep {
  step: Step;
  /** The outcome's status (e.g. `ACCESS_DENIED` when BLOCKED, `MFA_AUTH` when MFA). */
  status: string;
  routes: RouteName[];
}

/** Exactly one of `mobile` (`+86-13800000000`) and `email`. */
export type Destination = { mobile: string; email?: undefined } | { email: string; mobile?: undefined };

export interface BffClient {
  /** wx.login, then `POST /login`. */
  login(): Promise<Outcome>;
  /** `POST /login/phone` with the phone-number button's code. Never retried automatically. */
  loginWithPhone(phoneCode: string): Promise<Outcome>;
  /** `POST /bind/username-password`. Never retried automatically. */
  bindWithPassword(userName: string, password: string): Promise<Outcome>;
  /** `POST /bind/wechat-phone`. Never retried automatically. */
  bindWithWechatPhone(phoneCode: string): Promise<Outcome>;
  /** `POST /bind/verification-code`. Never retried automatically. */
  bindWithCode(destination: Destination, verifyCode: string): Promise<Outcome>;
  /** `POST /register/wechat-phone`. Never retried automatically. */
  registerWithWechatPhone(phoneCode: string): Promise<Outcome>;
  /** `POST /register/verification-code`. Never retried automatically. */
  registerWithCode(destination: Destination, verifyCode: string): Promise<Outcome>;
  /** `GET /captcha`: a slider for `sendCode`. */
  getCaptcha(): Promise<CaptchaResponse>;
  /** `POST /verification-codes`: verifies the slider and sends the code. Never retried. */
  sendCode(request: VerificationCodesRequest): Promise<void>;
  /**
   * `GET /mfa`: the pending MFA_AUTH step's factor and its destination, masked, to show.
   * Rejects with `BFF.NO_PENDING_STEP` (409) when no step is pending: `login()` again.
   */
  mfaInfo(): Promise<MfaResponse>;
  /**
   * `POST /mfa/codes`: verifies the slider (`getCaptcha`) and sends the second factor's code.
   * Never retried (it costs an SMS); `BFF.RATE_LIMITED` (429) carries `retry_after`.
   */
  sendMfaCode(captcha: CaptchaAnswer): Promise<void>;
  /** `POST /mfa/verify` with the code received: an outcome (SUCCESS keeps the id_token). Never retried. */
  verifyMfa(verifyCode: string): Promise<Outcome>;
  /** `POST /password/skip` (PASSWORD_WARN only; else `BFF.NO_PENDING_STEP`): an outcome. Never retried. */
  skipPasswordChange(): Promise<Outcome>;
  /**
   * `POST /password/change` (PASSWORD_WARN or PASSWORD_EXPIRED): an outcome. A new password that
   * breaks the policy of the last outcome is refused without a request, as bff would refuse it:
   * `BFF.PASSWORD_POLICY` with `errors.new_password` (then `status` is 0). Never retried.
   */
  changePassword(oldPassword: string, newPassword: string): Promise<Outcome>;
  /** `POST /session/refresh` (one at a time: concurrent callers share it). */
  refresh(): Promise<RefreshResponse>;
  /**
   * A valid id_token: the one in memory, or a refreshed one when it is close to expiry.
   * Rejects with `BFF.SESSION_EXPIRED` when the user must sign in again.
   */
  getIdToken(): Promise<string>;
  /** `GET /session`. */
  sessionStatus(): Promise<SessionStatusResponse>;
  /** `DELETE /session`; the id_token and the stored handle are forgotten whatever happens. */
  logout(): Promise<void>;
  /**
   * `DELETE /wechat-binding`: unbinds this WeChat account from the IDaaS account; bff ends every
   * session and handle of the user. Then the stored handle and the id_token are forgotten, as
   * after `logout()` (after an error they are kept). Never retried.
   */
  unbindWechat(): Promise<void>;
  /** `GET /sessions`: the user's sessions, one per device with a handle; `current` is this one. */
  listSessions(): Promise<SessionInfo[]>;
  /**
   * `DELETE /sessions/{id}`: that device is signed out (its next call answers
   * `BFF.SESSION_REVOKED`). Rejects with `BFF.NOT_FOUND` when the user has no such session.
   * When `id` is this device's (`current` in the last `listSessions()`), the stored handle and
   * the id_token are forgotten too, as after `logout()`.
   */
  endSession(id: string): Promise<void>;
  /**
   * A request to the company's own APIs behind the same gateway, with `Authorization: Bearer
   * <handle>`. Resolves with wx.request's result, whatever its status, unless the gateway
   * refused the handle (401/403 with `X-BFF-Error`): then it rejects with that code.
   * `BFF.UNAUTHENTICATED`: a new handle first, and the request once more. `BFF.SESSION_REVOKED`
   * (signed out on another device): the handle is dropped, nothing is re-obtained.
   * `BFF.SESSION_EXPIRED`: sign in again. No answer: `CLIENT.TIMEOUT` / `CLIENT.NETWORK`.
   */
  callApi(request: ApiRequest): Promise<RequestResult>;
}

/** The one error every method rejects with. */
export class BffError extends Error {
  constructor(fields: {
    error_code: string;
    error_msg?: string;
    request_id?: string;
    status?: number;
    retry_after?: number | null;
    errors?: { [field: string]: unknown };
  });
  /**
   * bff's or the IDaaS's code (`BFF.RATE_LIMITED`, `IDAAS.SDK.LOGIN.1005`), or `CLIENT.*`.
   * `BFF.SESSION_REVOKED` (401) from any call: this device was signed out on another one (or by
   * an operator); the module has dropped the handle and the id_token.
   * `BFF.NO_PENDING_STEP` (409) from the MFA and password-step methods: no such step is pending
   * (none, expired, or finished): `login()` again. `BFF.PASSWORD_POLICY` (400) from
   * `changePassword`: the new password breaks the policy (`errors.new_password`).
   */
  error_code: string;
  /** For display (it follows X-L); never branch on it. */
  error_msg: string;
  /** Show it ("copy" button): support finds the request in bff's logs with it. */
  request_id: string;
  /** Seconds to wait before trying again (`Retry-After`), or null. */
  retry_after: number | null;
  /** The HTTP status; 0 when no answer came (`CLIENT.*`). */
  status: number;
  /** BFF.VALIDATION, BFF.PASSWORD_POLICY: the problems per field. */
  errors?: { [field: string]: unknown };
  /**
   * After `CLIENT.TIMEOUT` / `CLIENT.NETWORK` on a sign-in call: whether `GET /session` then
   * showed the user signed in (false: it did not go through; undefined: could not tell).
   */
  session_active?: boolean;
  /** True when `error_code` is `code` or ends with `.` + `code` (`is('LOGIN.1005')`). */
  is(code: string): boolean;
}

/** `err.is(code)` for anything thrown (false for errors that are not BffErrors). */
export function isCode(err: unknown, code: string): boolean;

/** What the UI should do with a login or bind outcome. */
export function nextStep(outcome: { status: string; flows?: string[]; id_token?: string }): NextStep;

export function createBffClient(options: BffClientOptions): BffClient;

export const DEFAULT_TIMEOUT_MS: number;
export const VERSION: string;
