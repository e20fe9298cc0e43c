"""Flask's JSON provider on orjson: every answer is serialised in C (``jsonify`` goes through it),
compact, keys in the order the code wrote them, a newline at the end as Flask's own has."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    """``dumps`` and ``response`` through orjson; ``loads`` stays the standard library's (bff
    reads request bodies itself, strictly: bff.web.operations)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._bytes(obj).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = self._bytes(self._prepare_response_obj(args, kwargs)) + b"\n"
        return Response(body, mimetype=self.mimetype)  # bff's response_class

    def _bytes(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default)
        except TypeError:
            # A lone surrogate, which orjson refuses: a client's own JSON can bring one into an
            # error's field names. The standard library escapes it (\ud800).
            return super().dumps(obj, separators=(",", ":")).encode()


class BffFlask(Flask):
    """The Flask application class of bff: its answers through :class:`OrjsonProvider`."""

    json_provider_class = OrjsonProvider
