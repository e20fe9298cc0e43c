"""One pooled HTTP session per upstream, timeouts, a circuit breaker and the failure policy.

A request is sent once and never re-sent: a POST that may have reached the IDaaS has spent a
single-use code or state token. Nothing here logs a URL (WeChat's carries the app secret).
"""

from __future__ import annotations

import http.cookiejar
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from circuitbreaker import CircuitBreaker  # type: ignore[import-untyped]
from requests.adapters import HTTPAdapter

from bff.errors import BAD_RESPONSE, TIMEOUT, UNAVAILABLE, UpstreamError, upstream_error
from bff.observability import record_upstream


@dataclass(frozen=True)
class Answer:
    """A non-5xx upstream answer: its status and JSON body (None when the body was empty)."""

    status: int
    body: Any


def pooled_session(pool_size: int = 64) -> requests.Session:
    """A Session whose adapter keeps connections alive and never retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no proxy or .netrc surprises from the environment
    # One session serves every user: a cookie one answer sets must never ride on another
    # user's call (SPEC §4: no cookies), so the jar accepts none.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class Upstream:
    """Sends one request to one upstream and classifies what came back (SPEC §4)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout: tuple[float, float],
        breaker: CircuitBreaker,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._breaker = breaker
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
        if self._breaker.opened:  # fail fast; half-open (after the window) lets calls through
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
            record_upstream(self.name, outcome, time.perf_counter() - started)

    def _send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: object,
        params: Mapping[str, str] | None,
    ) -> Answer:
        try:
            resp = self._http.request(
                method,
                self._base_url + path,
                headers=dict(headers),
                json=body,
                params=params,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.ConnectionError as exc:  # refused, reset, ConnectTimeout (caught first)
            raise upstream_error(503, UNAVAILABLE) from exc
        except requests.Timeout as exc:  # read timeout: the upstream may have acted
            raise upstream_error(504, TIMEOUT) from exc
        except (requests.RequestException, UnicodeError, ValueError) as exc:  # chunking, encoding
            raise upstream_error(502, BAD_RESPONSE) from exc
        if resp.status_code >= 500 or resp.status_code < 200 or 300 <= resp.status_code < 400:
            raise upstream_error(502, BAD_RESPONSE)
        if not resp.content and resp.status_code < 300:
            return Answer(resp.status_code, None)
        try:
            return Answer(resp.status_code, resp.json())
        except (ValueError, RecursionError) as exc:  # non-JSON (an HTML page, garbage), too deep
            raise upstream_error(502, BAD_RESPONSE) from exc


def _is_failure(exc_type: type[BaseException], exc: BaseException | None) -> bool:
    """Only an upstream failure counts (5xx, garbage, timeout, refused); a 4xx answer or our own
    bug does not, so no client input can open the breaker for everyone."""
    return issubclass(exc_type, UpstreamError)


def breaker(name: str, failures: int, reset_s: float) -> CircuitBreaker:
    """Per worker: ``failures`` consecutive upstream failures open it for ``reset_s``; then calls
    go through again (half-open) and the first failure re-opens it.

    The ``circuitbreaker`` library keeps no lock around the guarded call, so concurrent calls in
    a gthread worker do not queue behind each other (pybreaker's did).
    """
    return CircuitBreaker(
        failure_threshold=failures,
        recovery_timeout=reset_s,
        expected_exception=_is_failure,
        name=name,
    )
