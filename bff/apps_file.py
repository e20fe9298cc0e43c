"""Reading ``BFF_APPS_FILE`` (:mod:`bff.apps` says what it holds): every app checked, every
problem of every app named at once, each app defaulting to the environment's values."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bff.apps import (
    APP_NAME,
    DEFAULT_APP,
    IDENTITY_SOURCES,
    KNOWN_KEYS,
    PREFIX,
    RATE_LIMITS,
    SIGN_IN_ROUTES,
    TEXT_KEYS,
    WECHAT_APPID,
    AppSettings,
)
from bff.env_fields import FILE_SUFFIX, from_files, parse_rate_limits
from bff.limits import Limits


class _Problems(dict[str, str]):
    """``apps.NAME.KEY: problem``, the first one of each."""

    def add(self, where: str, problem: str) -> None:
        self.setdefault(where, problem)


def parse_apps(
    path: str,
    default: AppSettings,
    environ: Mapping[str, str],
    *,
    production: bool,
) -> tuple[tuple[AppSettings, ...], dict[str, str]]:
    """The apps of the file at ``path`` (each defaulting to ``default``'s values) and every
    problem found, as ``{"apps.shop.wechat_secret": "..."}``; no apps when there are any."""
    problems = _Problems()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return (), {"file": f"cannot be read ({exc.strerror})"}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return (), {"file": f"not TOML: {exc}"}
    extra = set(document) - {"apps"}
    if extra:
        problems.add("file", f"unknown tables {sorted(extra)} (only [apps.NAME])")
    tables = document.get("apps", {})
    if not isinstance(tables, dict) or not tables:
        problems.add("file", "declares no app ([apps.NAME] tables)")
        return (), dict(problems)
    apps = []
    for name, table in tables.items():
        app = _app(name, table, default, environ, production, problems)
        if app is not None:
            apps.append(app)
    _check_unique((default, *apps), problems)
    return (() if problems else tuple(apps)), dict(problems)


def _app(
    name: str,
    table: Any,
    default: AppSettings,
    environ: Mapping[str, str],
    production: bool,
    problems: _Problems,
) -> AppSettings | None:
    where = f"apps.{name}"
    if not APP_NAME.match(name) or name == DEFAULT_APP:
        problems.add(where, f"not an app name (a-z, 0-9 and -, at most 32; not {DEFAULT_APP!r})")
        return None
    if not isinstance(table, dict):
        problems.add(where, "must be a table")
        return None
    for key in sorted(set(table) - KNOWN_KEYS):
        problems.add(f"{where}.{key}", "unknown key")
    values: dict[str, Any] = {
        "name": name,
        "redis_key_prefix": f"{default.redis_key_prefix}.{name}",
    }
    for key in TEXT_KEYS:
        if key in table:
            if isinstance(table[key], str) and table[key].strip():
                values[key] = table[key].strip()
            else:
                problems.add(f"{where}.{key}", "must be a non-empty string")
    values.update(_limits(table, where, problems))
    if "idaas_verify_id_token" in table:
        values["idaas_verify_id_token"] = table["idaas_verify_id_token"] is not False
    if "routes" in table:
        values["routes"] = _routes(table["routes"], f"{where}.routes", problems)
    values["wechat_secret"] = _secret(table.get("wechat_secret"), where, environ, problems)
    app = dataclasses.replace(default, **values)
    _check_app(app, table, where, production, problems)
    return app


def _limits(table: Mapping[str, Any], where: str, problems: _Problems) -> dict[str, Limits]:
    out: dict[str, Limits] = {}
    for key, scopes in RATE_LIMITS.items():
        if key in table:
            try:
                out[key] = parse_rate_limits(str(table[key]), scopes)
            except ValueError as exc:
                problems.add(f"{where}.{key}", f"not a rate limit like '5/minute': {exc}")
    return out


def _routes(value: Any, where: str, problems: _Problems) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        problems.add(where, "must be a list of route names")
        return frozenset()
    unknown = sorted(set(value) - set(SIGN_IN_ROUTES))
    if unknown:
        problems.add(where, f"unknown routes {unknown} (known: {', '.join(SIGN_IN_ROUTES)})")
    return frozenset(value)


def _secret(value: Any, where: str, environ: Mapping[str, str], problems: _Problems) -> str | None:
    """``{env = NAME}`` (or the file ``NAME_FILE`` names, as for any secret variable) or
    ``{file = PATH}``; a secret written in the file is refused."""
    if value is None:
        return None
    key = f"{where}.wechat_secret"
    if isinstance(value, str):
        problems.add(key, "write { env = NAME } or { file = PATH }: no secret in this file")
        return None
    if not isinstance(value, dict) or set(value) not in ({"env"}, {"file"}):
        problems.add(key, "must be { env = NAME } or { file = PATH }")
        return None
    if "env" in value:
        name = str(value["env"])
        found, file_problems = from_files(environ, (name,))
        for problem in file_problems.values():
            problems.add(key, f"{name}{FILE_SUFFIX}: {problem}")
        secret = found.get(name, "")
        if not secret and not file_problems:
            problems.add(key, f"the variable {name} is not set")
        return secret or None
    try:
        secret = Path(str(value["file"])).read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.add(key, f"cannot read {value['file']} ({exc.strerror})")
        return None
    if not secret:
        problems.add(key, f"{value['file']} is empty")
    return secret or None


def _check_app(
    app: AppSettings, table: Mapping[str, Any], where: str, production: bool, problems: _Problems
) -> None:
    if app.identity_source not in IDENTITY_SOURCES:
        problems.add(f"{where}.identity_source", f"must be one of {', '.join(IDENTITY_SOURCES)}")
    if "wechat_appid" not in table:
        problems.add(f"{where}.wechat_appid", "required: every app is one mini program")
    elif not WECHAT_APPID.match(app.wechat_appid or ""):
        problems.add(f"{where}.wechat_appid", "not a WeChat appid")
    if "idaas_client_id" not in table:
        problems.add(f"{where}.idaas_client_id", "required: every app is one IDaaS app")
    if app.identity_source == "wechat" and not app.wechat_secret:
        problems.add(f"{where}.wechat_secret", "required when identity_source is wechat")
    if not PREFIX.match(app.redis_key_prefix):
        problems.add(f"{where}.redis_key_prefix", "1-64 of A-Z a-z 0-9 _ . { } -")
    for key in ("idaas_base_url", "wechat_api_base"):
        parts = urlsplit(getattr(app, key))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.add(f"{where}.{key}", "not an http(s) URL")
        elif production and parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            problems.add(f"{where}.{key}", "must be https:// in production")


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_unique(apps: tuple[AppSettings, ...], problems: _Problems) -> None:
    """No two apps share an appid (the gateway names an app by it) or a key prefix."""
    for attribute in ("wechat_appid", "redis_key_prefix"):
        seen: dict[str, str] = {}
        for app in apps:
            value = getattr(app, attribute)
            if value is not None and value in seen:
                problems.add(
                    f"apps.{app.name}.{attribute}", f"{app.name} and {seen[value]} share it"
                )
            elif value is not None:
                seen[value] = app.name


def default_app(data: Mapping[str, Any]) -> AppSettings:
    """The app the environment's variables describe: a single-app deployment's only one."""
    return AppSettings(
        name=DEFAULT_APP,
        redis_key_prefix=data["redis_key_prefix"],
        identity_source=data["identity_source"],
        idaas_base_url=data["idaas_base_url"],
        idaas_client_id=data["idaas_client_id"],
        idaas_session_token_header=data["idaas_session_token_header"],
        idaas_verify_id_token=data["idaas_verify_id_token"],
        wechat_appid=data.get("wechat_appid"),
        wechat_secret=data.get("wechat_secret"),
        wechat_api_base=data["wechat_api_base"],
        rate_limit_bind=data["rate_limit_bind"],
        rate_limit_login=data["rate_limit_login"],
        rate_limit_session=data["rate_limit_session"],
        rate_limit_codes=data["rate_limit_codes"],
    )


def apps_of(
    data: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[tuple[AppSettings, ...], dict[str, str]]:
    """The default app, then those of BFF_APPS_FILE; problems under the file's variable."""
    default = default_app(data)
    if not data.get("bff_apps_file"):
        return (default,), {}
    production = data.get("bff_env") == "production"
    apps, problems = parse_apps(data["bff_apps_file"], default, env, production=production)
    if any(app.identity_source == "gateway" for app in apps) and not data.get("gateway_secret"):
        problems.setdefault("apps", "an app in gateway mode needs GATEWAY_SECRET")
    listed = "; ".join(f"{where}: {what}" for where, what in sorted(problems.items()))
    return (default, *apps), ({"BFF_APPS_FILE": listed} if problems else {})
