"""The production server's own settings (``GUNICORN_*``), checked together with bff's.

``config/gunicorn.conf.py`` calls :func:`load_server_settings` in the gunicorn master before any
worker forks: one line names every bad variable, bff's and gunicorn's, and the process exits 1.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from bff.env_fields import check_environment, count, env_var, environment, settings_problem
from bff.settings import Settings, collect_settings

WORKER_CLASSES = ("gevent", "gthread")  # gevent: the faster on the bench (performance.md)
_BIND = re.compile(r"^(unix:/\S+|\[[0-9A-Fa-f:.]+\]:\d{1,5}|[A-Za-z0-9.-]*:\d{1,5})$")


class _LowerChoice(fields.String):
    """One of ``choices``, in any case; kept lower-case."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = choices

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        choice = str(super()._deserialize(value, attr, data, **kwargs)).strip().lower()
        if choice not in self.choices:
            raise ValidationError(f"must be one of {', '.join(self.choices)}")
        return choice


@dataclass(frozen=True)
class ServerSettings:
    """Every ``GUNICORN_*`` knob of config/gunicorn.conf.py."""

    bind: str = env_var(
        fields.String(
            data_key="GUNICORN_BIND",
            load_default="0.0.0.0:8000",
            validate=validate.Regexp(_BIND, error="not HOST:PORT, [IPv6]:PORT or unix:/PATH"),
        )
    )
    workers: int = env_var(count("GUNICORN_WORKERS", 2))
    worker_class: str = env_var(
        _LowerChoice(WORKER_CLASSES, data_key="GUNICORN_WORKER_CLASS", load_default="gevent")
    )
    threads: int = env_var(count("GUNICORN_THREADS", 16))
    worker_connections: int = env_var(count("GUNICORN_WORKER_CONNECTIONS", 1000))
    timeout: int = env_var(count("GUNICORN_TIMEOUT", 30))
    graceful_timeout: int = env_var(count("GUNICORN_GRACEFUL_TIMEOUT", 30))
    drain_s: int = env_var(count("GUNICORN_DRAIN_S", 5, minimum=0))
    keepalive: int = env_var(count("GUNICORN_KEEPALIVE", 5, minimum=0))
    max_requests: int = env_var(count("GUNICORN_MAX_REQUESTS", 0, minimum=0))
    max_requests_jitter: int = env_var(count("GUNICORN_MAX_REQUESTS_JITTER", 0, minimum=0))
    log_level: str = env_var(
        _LowerChoice(
            ("debug", "info", "warning", "error", "critical"),
            data_key="GUNICORN_LOG_LEVEL",
            load_default="info",
        )
    )


_SCHEMA = Schema.from_dict(
    {f.name: f.metadata["env"] for f in dataclass_fields(ServerSettings)}, name="Server"
)()


def _cross_checks(data: Mapping[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    if data.get("worker_class") == "gevent" and importlib.util.find_spec("gevent") is None:
        problems["GUNICORN_WORKER_CLASS"] = "gevent is not installed (pip install gevent)"
    drain, graceful = data.get("drain_s"), data.get("graceful_timeout")
    if drain is not None and graceful is not None and drain >= graceful:
        problems["GUNICORN_DRAIN_S"] = "must be shorter than GUNICORN_GRACEFUL_TIMEOUT"
    return problems


# What the gunicorn master validated last (config/gunicorn.conf.py): the workers it forks inherit
# it, and build their app from it rather than reading BFF_APPS_FILE again (which a bad edit may
# have broken since). A SIGHUP replaces it only with a configuration that validates.
_VALIDATED: list[tuple[Settings, ServerSettings]] = []


def remember(settings: Settings, server: ServerSettings) -> None:
    """The gunicorn master's configuration, for the workers it forks from now on."""
    _VALIDATED[:] = [(settings, server)]


def remembered() -> tuple[Settings, ServerSettings] | None:
    """What :func:`remember` kept in this process or the master it was forked from."""
    return _VALIDATED[0] if _VALIDATED else None


def load_server_settings(
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, ServerSettings]:
    """bff's settings and the server's, or one SettingsError naming every bad variable."""
    env = environment(environ)
    settings, problems = collect_settings(env)
    data, server_problems = check_environment(_SCHEMA, env)
    problems = {**problems, **_cross_checks(data), **server_problems}
    if settings is None or problems:
        raise settings_problem(problems)
    return settings, ServerSettings(**data)
