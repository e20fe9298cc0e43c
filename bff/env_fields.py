"""How one environment variable becomes a typed value: the marshmallow fields Settings and the
gunicorn settings are declared with, and the rate-limit syntax (``openid=5/minute,ip=30/minute``).
The ``limits`` library parses each rate; :mod:`bff.limits` holds what it becomes."""

from __future__ import annotations

import re
from dataclasses import field as dataclass_field
from typing import Any

from limits import parse_many
from marshmallow import ValidationError, fields, validate

from bff.limits import Rate, Scope

HEADER_NAME = validate.Regexp(r"^[A-Za-z0-9-]{1,64}$", error="not a valid HTTP header name")


def parse_rate_limits(value: str, scopes: tuple[Scope, ...]) -> dict[Scope, tuple[Rate, ...]]:
    """Parse ``"openid=5/minute,ip=30/minute"``; a bare ``"20/minute"`` applies to every scope.

    A scope with several limits is named once per limit (``destination=1/minute,
    destination=5/hour``): no spaces and no shell metacharacters, so one env file works sourced
    by a shell and as a Docker/compose env file. The older form (groups separated by spaces,
    ``;`` between one scope's limits) is still read.
    """
    groups = [g for g in re.split(r"[,\s]+", value) if g]
    if not groups:
        raise ValueError("empty rate limit")
    scoped = ["=" in g for g in groups]
    if any(scoped) and not all(scoped):
        raise ValueError("give every limit its scope (scope=N/unit), or give one bare limit")
    named = {scope.value: scope for scope in scopes}
    parsed: dict[Scope, tuple[Rate, ...]] = {}
    for group in groups:
        name, sep, spec = group.rpartition("=")
        if sep and name not in named:
            raise ValueError(f"unknown scope {name!r} (one of {', '.join(named)})")
        targets = (named[name],) if sep else scopes
        rates = tuple(Rate(i.amount, i.get_expiry(), str(i)) for i in parse_many(spec))
        for target in targets:
            parsed[target] = parsed.get(target, ()) + rates
    return parsed


class LogLevel(fields.String):
    """``debug``, ``Info``, ``WARNING``, ...: any case, kept upper-case."""

    LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        level = str(super()._deserialize(value, attr, data, **kwargs)).strip().upper()
        if level not in self.LEVELS:
            raise ValidationError(f"must be one of {', '.join(self.LEVELS)} (any case)")
        return level


class RateLimitField(fields.Field):  # type: ignore[type-arg]
    def __init__(self, scopes: tuple[Scope, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scopes = scopes

    def _deserialize(
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> dict[Scope, tuple[Rate, ...]]:
        try:
            return parse_rate_limits(str(value), self.scopes)
        except ValueError as exc:
            raise ValidationError(f"not a rate limit like '5/minute': {exc}") from None


class HostPorts(fields.Field):  # type: ignore[type-arg]
    """``host:port,host:port`` (``[::1]:26379`` for an IPv6 address): a tuple of pairs."""

    def _deserialize(
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> tuple[tuple[str, int], ...]:
        found = []
        for item in (part.strip() for part in str(value).split(",")):
            host, sep, port = item.rpartition(":")
            host = host.removeprefix("[").removesuffix("]")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                raise ValidationError(f"not a host:port list like 'sentinel-1:26379': {item!r}")
            found.append((host, int(port)))
        return tuple(found)


def positive(name: str, default: float) -> fields.Float:
    return fields.Float(
        data_key=name, load_default=default, validate=validate.Range(min=0, min_inclusive=False)
    )


def count(name: str, default: int, minimum: int = 1) -> fields.Integer:
    return fields.Integer(
        data_key=name, load_default=default, strict=False, validate=validate.Range(min=minimum)
    )


def header(name: str, default: str) -> fields.String:
    return fields.String(data_key=name, load_default=default, validate=HEADER_NAME)


def env_var(field: fields.Field) -> Any:  # type: ignore[type-arg]
    """A Settings field read from the environment variable ``field.data_key``."""
    return dataclass_field(metadata={"env": field})
