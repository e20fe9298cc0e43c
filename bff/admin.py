"""bff-admin: operator commands against the configured Redis, without Flask.

``bff-admin`` (console script) or ``python -m bff.admin``; settings come from the environment,
read and validated exactly as the service reads them (``bff.settings.load_settings``)::

    bff-admin session show OPENID    what bff keeps for a WeChat user: state and TTLs, JSON
    bff-admin session revoke OPENID  end it, as DELETE /api/v1/session does (the same flow)
    bff-admin hash-openid OPENID     the openid_hash the logs carry for that user
    bff-admin check-config           validate the environment, print the settings (redacted)

Nothing printed is a token, a state token, a handle or a secret. Exit status: 0 done;
1 configuration error (one line naming the variable, as gunicorn's master prints it);
2 usage error; 3 Redis unavailable, or the user's openid lock stayed taken.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bff import flows
from bff.errors import BffError, SettingsError
from bff.models import WECHAT_ID
from bff.observability import hash_openid
from bff.services import Services, build_services
from bff.settings import Settings, load_settings

EXIT_CONFIG, EXIT_FAILED = 1, 3  # and 2: a usage error (argparse)


def _openid(value: str) -> str:
    if not WECHAT_ID.match(value):  # what the service accepts as an openid
        raise argparse.ArgumentTypeError("not an openid (1-128 of A-Z a-z 0-9 _ -)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bff-admin",
        description="bff operator commands against the configured Redis (settings from the "
        "environment, as for the service).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    session = commands.add_parser("session", help="a WeChat user's session, pending bind, handles")
    actions = session.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="state and TTLs as JSON (never a token or handle)")
    show.add_argument("openid", type=_openid)
    show.set_defaults(run=_session_show)
    revoke = actions.add_parser(
        "revoke", help="end the session, the pending bind and the handles, as logout does"
    )
    revoke.add_argument("openid", type=_openid)
    revoke.set_defaults(run=_session_revoke)
    hashed = commands.add_parser("hash-openid", help="the openid_hash the request logs carry")
    hashed.add_argument("openid", type=_openid)
    hashed.set_defaults(run=_hash_openid)
    check = commands.add_parser(
        "check-config", help="validate the environment; print the settings, secrets redacted"
    )
    check.set_defaults(run=_check_config)
    return parser


Command = Callable[[argparse.Namespace, Settings], Any]


def _with_services(settings: Settings, use: Callable[[Services], Any]) -> Any:
    """Run ``use`` with the service's clients, closed afterwards (nothing is left open)."""
    svc = build_services(settings)
    try:
        return use(svc)
    finally:
        svc.close()


def _session_show(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    state = _with_services(settings, lambda svc: svc.store.describe(args.openid))
    return {"openid_hash": hash_openid(settings.openid_hash_key, args.openid), **state}


def _session_revoke(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    def revoke(svc: Services) -> dict[str, Any]:
        before = svc.store.describe(args.openid)
        flows.revoke(svc, args.openid)  # what logout does, under the openid lock
        return {"revoked": True, "before": before, "after": svc.store.describe(args.openid)}

    outcome = _with_services(settings, revoke)
    return {"openid_hash": hash_openid(settings.openid_hash_key, args.openid), **outcome}


def _hash_openid(args: argparse.Namespace, settings: Settings) -> str:
    return hash_openid(settings.openid_hash_key, args.openid)


def _check_config(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return settings.redacted()


def _log_to_stderr() -> None:
    """The warnings of the code a command runs ("session store unavailable") go to stderr: stdout
    is the command's answer. Left alone when logging is already set up (a process that serves)."""
    logger = logging.getLogger("bff")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("bff-admin: %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one command; ``environ`` defaults to ``os.environ``. Returns the exit status."""
    _log_to_stderr()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        print(f"bff: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    command: Command = args.run
    try:
        result = command(args, settings)
    except BffError as exc:  # Redis down (fail closed), the openid lock held
        print(f"bff-admin: {exc.code}: {exc.message}", file=sys.stderr)  # noqa: T201
        return EXIT_FAILED
    text = result if isinstance(result, str) else json.dumps(result, indent=2)
    print(text)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
