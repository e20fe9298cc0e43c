"""One pooled HTTP session per upstream, timeouts, a circuit breaker and the failure policy.

A request is sent once and never re-sent: a POST that may have reached the IDaaS has spent a
single-use code or state token. Nothing here logs a URL (WeChat's carries the app secret).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pybreaker
import requests
from requests.adapters import HTTPAdapter

from bff.errors import UpstreamError, upstream_error
from bff.observability import record_upstream

BAD = "BFF.UPSTREAM_BAD_RESPONSE"
TIMEOUT = "BFF.UPSTREAM_TIMEOUT"
UNAVAILABLE = "BFF.UPSTREAM_UNAVAILABLE"


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
    return session


class Upstream:
    """Sends one request to one upstream and classifies what came back (SPEC §4)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout: tuple[float, float],
        breaker: pybreaker.CircuitBreaker,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._breaker = breaker
        self._http = session or pooled_session()

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
        started = time.perf_counter()
        outcome = "ok"
        try:
            answer: Answer = self._breaker.call(
                self._send, method, path, headers or {}, body, params
            )
            outcome = "ok" if answer.status < 400 else "client_error"
            return answer
        except pybreaker.CircuitBreakerError:
            outcome = "circuit_open"
            raise upstream_error(503, UNAVAILABLE) from None
        except UpstreamError as exc:
            outcome = {BAD: "bad_response", TIMEOUT: "timeout"}.get(exc.code, "unavailable")
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
        except requests.RequestException as exc:  # broken chunking, bad encoding, ...
            raise upstream_error(502, BAD) from exc
        if resp.status_code >= 500 or resp.status_code < 200 or 300 <= resp.status_code < 400:
            raise upstream_error(502, BAD)
        if not resp.content and resp.status_code < 300:
            return Answer(resp.status_code, None)
        try:
            return Answer(resp.status_code, resp.json())
        except ValueError as exc:  # non-JSON (an HTML error page, garbage)
            raise upstream_error(502, BAD) from exc


def breaker(name: str, failures: int, reset_s: float) -> pybreaker.CircuitBreaker:
    """Per worker: ``failures`` consecutive 5xx/garbage/timeouts open it for ``reset_s``."""
    return pybreaker.CircuitBreaker(
        fail_max=failures,
        reset_timeout=reset_s,
        name=name,
        throw_new_error_on_trip=False,  # the call that trips it answers its own error
    )
