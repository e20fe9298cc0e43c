"""One pooled HTTP session per upstream, timeouts, a circuit breaker and the failure policy.

A request is sent once and never re-sent: a POST that may have reached the IDaaS has spent a
single-use code or state token. Nothing here logs a URL (WeChat's carries the app secret).
"""

from __future__ import annotations

import http.cookiejar
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from circuitbreaker import (  # type: ignore[import-untyped]
    STATE_HALF_OPEN,
    STATE_OPEN,
    CircuitBreaker,
)

from bff.clients import deadline
from bff.clients.deadline import DeadlineAdapter
from bff.errors import BAD_RESPONSE, TIMEOUT, UNAVAILABLE, UpstreamError, upstream_error
from bff.observability import record_upstream, upstream_headers


@dataclass(frozen=True)
class Answer:
    """A non-5xx upstream answer: its status and JSON body (None when the body was empty)."""

    status: int
    body: Any


def pooled_session(pool_size: int = 1024) -> requests.Session:
    """A Session whose adapter keeps connections alive and never retries.

    The pool grows on demand up to ``pool_size`` kept connections per upstream: as many as a
    gevent worker may have calls in flight (``GUNICORN_WORKER_CONNECTIONS``, 1000), so that no
    connection is opened only to be thrown away when the pool is full.
    """
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy or .netrc surprises from the environment
    # One session serves every user: a cookie one answer sets must never ride on another
    # user's call (no cookies), so the jar accepts none.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class Upstream:
    """Sends one request to one upstream and classifies what came back."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout: tuple[float, float],
        breaker: CircuitBreaker,
        *,
        max_body_bytes: int = 1024 * 1024,
        session: requests.Session | None = None,
    ) -> None:
        """``timeout`` is (connect, read) for each socket operation; their sum is also the
        deadline of the whole call, headers and body included (:mod:`bff.clients.deadline`)."""
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._deadline_s = timeout[0] + timeout[1]
        self._max_body = max_body_bytes
        self._breaker = breaker
        self._trial = threading.Lock()  # held by the one trial call of a half-open circuit
        self._http = session or pooled_session()

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: object = None,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send once.

        :returns: the answer when it is 2xx-4xx with a JSON (or, for 2xx, empty) body.
        :raises UpstreamError: 502 for 5xx or a body that is not JSON, 504 on a read timeout,
            503 when the connection failed or the circuit is open.
        """
        state = self._breaker.state
        # Open: fail fast. Half-open (the reset window passed): exactly one trial call per
        # worker goes through; the others fail fast until its outcome closes or re-opens it.
        trial = state == STATE_HALF_OPEN
        if state == STATE_OPEN or (trial and not self._trial.acquire(blocking=False)):
            record_upstream(self.name, "circuit_open", 0.0)
            raise upstream_error(503, UNAVAILABLE)
        started = time.perf_counter()
        outcome = "ok"
        try:
            with self._breaker:  # counts UpstreamError failures; holds no lock during the call
                answer = self._send(method, path, headers or {}, body, params)
            outcome = "ok" if answer.status < 400 else "client_error"
            return answer
        except UpstreamError as exc:
            outcome = {BAD_RESPONSE: "bad_response", TIMEOUT: "timeout"}.get(
                exc.code, "unavailable"
            )
            raise
        finally:
            if trial:
                self._trial.release()
            record_upstream(self.name, outcome, time.perf_counter() - started)

    def _send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: object,
        params: Mapping[str, str] | None,
    ) -> Answer:
        call, token = deadline.begin(self._deadline_s)
        try:
            status, raw = self._exchange(method, path, headers, body, params)
        except requests.ConnectionError as exc:  # refused, reset, ConnectTimeout (caught first)
            if call.expired:  # the watchdog cut a call that outlived its deadline
                raise upstream_error(504, TIMEOUT) from exc
            raise upstream_error(503, UNAVAILABLE) from exc
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError) as exc:  # read timeout:
            raise upstream_error(504, TIMEOUT) from exc  # the upstream may have acted
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,  # reading the body: a cut or broken connection
            OSError,
            UnicodeError,
            ValueError,
        ) as exc:
            raise upstream_error(
                504 if call.expired else 502, TIMEOUT if call.expired else BAD_RESPONSE
            ) from exc
        finally:
            deadline.end(call, token)
        if call.expired:  # cut short: what arrived is not the whole answer
            raise upstream_error(504, TIMEOUT)
        if status >= 500 or status < 200 or 300 <= status < 400:
            raise upstream_error(502, BAD_RESPONSE)
        if not raw and status < 300:
            return Answer(status, None)
        try:
            return Answer(status, json.loads(raw))
        except (ValueError, RecursionError) as exc:  # non-JSON (an HTML page, garbage), too deep
            raise upstream_error(502, BAD_RESPONSE) from exc

    def _exchange(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: object,
        params: Mapping[str, str] | None,
    ) -> tuple[int, bytes]:
        """The status and the body, read up to the cap (over it: 502, the rest left unread).

        The request is prepared here and handed to ``Session.send``: ``Session.request`` would
        merge session-wide headers, cookies, auth and hooks bff never sets (a tenth of a
        request's CPU, measured), and only the headers named here may leave anyway.
        """
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method,
            url=self._base_url + path,
            headers={**upstream_headers(), **headers, "Accept-Encoding": "identity"},
            json=body,
            params=params,
        )
        resp = self._http.send(
            prepared,
            timeout=self._timeout,
            allow_redirects=False,
            stream=True,  # the body is read here, chunk by chunk, against the cap
        )
        whole = False
        try:
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self._max_body:
                raise upstream_error(502, BAD_RESPONSE)
            raw = bytearray()
            while chunk := resp.raw.read1(64 * 1024, decode_content=True):
                raw += chunk
                if len(raw) > self._max_body:
                    raise upstream_error(502, BAD_RESPONSE)
            whole = True
            return resp.status_code, bytes(raw)
        finally:
            if whole:
                resp.raw.release_conn()  # read to the end: the connection can serve again
            else:
                resp.close()  # bytes left unread: this connection serves no one else


def _is_failure(exc_type: type[BaseException], exc: BaseException | None) -> bool:
    """Only an upstream failure counts (5xx, garbage, timeout, refused); a 4xx answer or our own
    bug does not, so no client input can open the breaker for everyone."""
    return issubclass(exc_type, UpstreamError)


def breaker(name: str, failures: int, reset_s: float) -> CircuitBreaker:
    """Per worker: ``failures`` consecutive upstream failures open it for ``reset_s``; then one
    trial call goes through (half-open, gated in :meth:`Upstream.send`) and its outcome closes
    or re-opens it.

    The ``circuitbreaker`` library keeps no lock around the guarded call, so concurrent calls in
    a gthread worker do not queue behind each other (pybreaker's did).
    """
    return CircuitBreaker(
        failure_threshold=failures,
        recovery_timeout=reset_s,
        expected_exception=_is_failure,
        name=name,
    )
