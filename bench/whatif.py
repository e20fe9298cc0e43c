"""What-if experiments: the production gunicorn config plus patches applied in each worker.

Used only with ``python -m bench.run --whatif NAME`` to measure a proposed bff change before
anyone makes it; bff's own files are not touched. ``BENCH_WHATIF`` names the patches (comma
separated). This file is a gunicorn config: it runs config/gunicorn.conf.py first.

- ``queuelog``: bff's log handler replaced by a queue; one thread per worker formats and
  writes the JSON lines (stdlib ``QueueListener``), so request threads never hold the
  handler lock across a write (which releases the GIL mid-request).
- ``urllib3``: the IDaaS calls go through a bare urllib3 pool instead of ``requests.Session``
  (same timeouts, no retries, no redirects, no cookies); ``Upstream._send`` is unchanged.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import os
import queue
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3

_production = Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"
exec(compile(_production.read_text(), str(_production), "exec"))  # noqa: S102 (our own config)


class _Reply:
    """The three things ``Upstream._send`` reads from a ``requests.Response``."""

    def __init__(self, status: int, content: bytes) -> None:
        self.status_code = status
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class _Urllib3Session:
    """``requests.Session.request`` as ``Upstream._send`` calls it, over one urllib3 pool."""

    def __init__(self) -> None:
        self._pools = urllib3.PoolManager(maxsize=64, retries=False)

    def request(self, method: str, url: str, **kw: Any) -> _Reply:
        connect, read = kw["timeout"]
        body = None if kw.get("json") is None else json.dumps(kw["json"]).encode()
        if kw.get("params"):
            url += "?" + urllib.parse.urlencode(kw["params"])
        try:
            resp = self._pools.request(
                method,
                url,
                body=body,
                headers=kw.get("headers"),
                timeout=urllib3.Timeout(connect=connect, read=read),
                redirect=False,
            )
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.Timeout(str(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(str(exc)) from exc
        return _Reply(resp.status, resp.data)


def _patch_urllib3(app: Any) -> None:
    services = app.extensions["bff"]
    for client in (services.idaas, services.wechat):
        if client is not None:
            client._http._http = _Urllib3Session()


class _Enqueue(logging.Handler):
    """Hands the record to the writer thread: no formatting, no handler lock, no I/O here."""

    def __init__(self, sink: queue.SimpleQueue[logging.LogRecord]) -> None:
        super().__init__()
        self.sink = sink

    def handle(self, record: logging.LogRecord) -> bool:
        self.sink.put_nowait(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.put_nowait(record)


def _patch_queued_logging(app: Any) -> None:
    """bff's JSON lines formatted and written by one background thread per worker."""
    bff_logger = logging.getLogger("bff")
    sink: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(sink, *bff_logger.handlers)
    bff_logger.handlers[:] = [_Enqueue(sink)]
    listener.start()
    atexit.register(listener.stop)


PATCHES: dict[str, Callable[[Any], None]] = {
    "queuelog": _patch_queued_logging,
    "urllib3": _patch_urllib3,
}


def post_worker_init(worker: Any) -> None:
    """After the worker loaded bff (``worker.wsgi`` is the Flask app)."""
    for name in filter(None, os.environ.get("BENCH_WHATIF", "").split(",")):
        PATCHES[name](worker.wsgi)
