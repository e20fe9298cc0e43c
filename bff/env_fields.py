"""How one environment variable becomes a typed value: the marshmallow fields Settings and the
gunicorn settings are declared with, and the rate-limit syntax (``openid=5/minute,ip=30/minute``).
The ``limits`` library parses each rate; :mod:`bff.limits` holds what it becomes.

A secret's variable ``NAME`` may instead name a file, ``NAME_FILE`` (the Docker and Kubernetes
convention): :func:`from_files` reads it into ``NAME`` before anything is validated, so that a
value from a file is checked, used and masked exactly as the variable's would be."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from limits import parse_many
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from bff.errors import SettingsError
from bff.limits import Rate, Scope

FILE_SUFFIX = "_FILE"
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


def secret_key(name: str, *, utf8_bytes: int | None = None, minimum: int = 32) -> fields.String:
    """A secret key, unset by default: at least ``minimum`` characters, or exactly
    ``utf8_bytes`` bytes as UTF-8 (an AES key is its bytes)."""
    if utf8_bytes is None:
        check: Any = validate.Length(min=minimum)
    else:

        def check(value: str) -> None:
            if len(value.encode()) != utf8_bytes:
                raise ValidationError(f"must be exactly {utf8_bytes} bytes (as UTF-8)")

    return fields.String(data_key=name, load_default=None, validate=check)


def env_var(field: fields.Field, *, secret: bool = False) -> Any:  # type: ignore[type-arg]
    """A Settings field read from the environment variable ``field.data_key``; a ``secret``
    one is left out of the Settings' repr."""
    return dataclass_field(metadata={"env": field}, repr=not secret)


def secret_var(field: fields.Field) -> Any:  # type: ignore[type-arg]
    """A Settings field read from ``field.data_key``, or from the file ``field.data_key_FILE``
    names (:func:`from_files`)."""
    return dataclass_field(metadata={"env": field, "file": True}, repr=False)


def read_value_file(path: str) -> tuple[str, str | None]:
    """The text of the file at ``path``, one trailing newline stripped, or the problem (which
    names the path and the reason, never any content)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return "", f"cannot read {path} ({exc.strerror or type(exc).__name__})"
    except UnicodeDecodeError:
        return "", f"cannot read {path} (not UTF-8 text)"
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text, None


def from_files(
    env: Mapping[str, str], names: Iterable[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``env`` with each ``NAME_FILE`` of ``names`` read into ``NAME``, and the problems under
    ``NAME_FILE``: both set, or a file that cannot be read. An empty file is an unset variable,
    as an empty variable is."""
    out = dict(env)
    problems: dict[str, str] = {}
    for name in names:
        path = out.pop(name + FILE_SUFFIX, None)
        if path is None:
            continue
        if name in out:
            problems[name + FILE_SUFFIX] = f"{name} and {name}{FILE_SUFFIX} are both set: set one"
            continue
        value, problem = read_value_file(path)
        if problem is not None:
            problems[name + FILE_SUFFIX] = problem
        elif value:
            out[name] = value
    return out, problems


def check_environment(
    schema: Schema, env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Load ``env`` with ``schema``: what loaded, and every variable's first problem."""
    try:
        return schema.load(env, unknown=EXCLUDE), {}  # the environment holds far more than ours
    except ValidationError as exc:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        problems = {
            name: str(found[0] if isinstance(found, list) else found)
            for name, found in messages.items()
        }
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return valid, problems


def settings_problem(problems: Mapping[str, str]) -> SettingsError:
    """One error naming every bad variable, in name order: ``A: ...; B: ...``."""
    return SettingsError("; ".join(f"{name}: {problems[name]}" for name in sorted(problems)))


def environment(
    environ: Mapping[str, str] | None = None, defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables to read: ``environ`` (default ``os.environ``) over ``defaults`` (a default
    gives way to a ``NAME_FILE`` too); an empty variable counts as unset."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if v != ""}
    kept = {k: v for k, v in (defaults or {}).items() if k + FILE_SUFFIX not in env}
    return {k: v for k, v in {**kept, **env}.items() if v != ""}
