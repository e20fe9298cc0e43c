"""bff-admin: operator commands against the configured Redis, without Flask.

``bff-admin`` (console script) or ``python -m bff.admin``; settings come from the environment,
read and validated exactly as the service reads them (``bff.settings.load_settings``)::

    bff-admin session show OPENID    what bff keeps for a WeChat user: state and TTLs, JSON
    bff-admin session revoke OPENID  end it, as DELETE /api/v1/session does (the same flow)
    bff-admin session revoke --subject SUB
                                     end every session of one IDaaS user: each openid bound
                                     to it, in every app (--app is ignored)
    bff-admin session list OPENID    the user's devices (live handles), as GET /api/v1/sessions
    bff-admin hash-openid OPENID     the openid_hash the logs carry for that user (the
                                     subject_hash of audit records, for an IDaaS subject; and,
                                     on a second line, its hash under the previous key during
                                     a rotation)
    bff-admin audit tail [-n N]      the app's last N audit records (AUDIT_STREAM_MAXLEN),
                                     the oldest first, one JSON object a line
    bff-admin check-config           validate the environment, print the settings (redacted)

``--app NAME`` (before the command) picks the app of ``BFF_APPS_FILE`` a command is about: its
Redis keys (default: the environment's app, ``default``).

Nothing printed is a token, a state token, a handle or a secret. Exit status: 0 done;
1 configuration error (one line naming the variable, as gunicorn's master prints it);
2 usage error; 3 Redis unavailable, or the user's openid lock stayed taken.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bff import flows
from bff.apps import DEFAULT_APP
from bff.errors import BffError, SettingsError
from bff.models import WECHAT_ID
from bff.observability import begin_request, end_request, hash_openid
from bff.services import Services, build_deployment
from bff.settings import Settings, load_settings

EXIT_CONFIG, EXIT_USAGE, EXIT_FAILED = 1, 2, 3  # 2: also argparse's usage errors


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
    parser.add_argument(
        "--app",
        default=DEFAULT_APP,
        metavar="NAME",
        help="the app (an [apps.NAME] of BFF_APPS_FILE) whose Redis keys a command reads; "
        f"default: {DEFAULT_APP}, the environment's",
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
    whom = revoke.add_mutually_exclusive_group(required=True)
    whom.add_argument("openid", type=_openid, nargs="?")
    whom.add_argument(
        "--subject", metavar="SUB", help="the IDaaS user (id_token sub): all its sessions"
    )
    revoke.set_defaults(run=_session_revoke)
    listed = actions.add_parser("list", help="the user's devices: when issued, last used, OS")
    listed.add_argument("openid", type=_openid)
    listed.set_defaults(run=_session_list)
    hashed = commands.add_parser("hash-openid", help="the openid_hash the request logs carry")
    hashed.add_argument("openid", type=_openid)
    hashed.set_defaults(run=_hash_openid)
    audit = commands.add_parser("audit", help="the audit stream (AUDIT_STREAM_MAXLEN)")
    audit_actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = audit_actions.add_parser("tail", help="the last records, the oldest first")
    tail.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    tail.set_defaults(run=_audit_tail)
    check = commands.add_parser(
        "check-config", help="validate the environment; print the settings, secrets redacted"
    )
    check.set_defaults(run=_check_config)
    return parser


Command = Callable[[argparse.Namespace, Settings], Any]


class UnknownAppName(Exception):
    """``--app`` names no app of this deployment."""


def _with_services(
    args: argparse.Namespace, settings: Settings, use: Callable[[Services], Any]
) -> Any:
    """Run ``use`` with the ``--app`` app's clients, closed afterwards (nothing left open)."""
    deployment = build_deployment(settings)
    try:
        svc = deployment.app(args.app)
        if svc is None:
            raise UnknownAppName(args.app)
        return use(svc)
    finally:
        deployment.close()


def _session_show(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    state = _with_services(args, settings, lambda svc: svc.store.describe(args.openid))
    return {"openid_hash": hash_openid(settings.openid_hash_key, args.openid), **state}


def _session_list(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    found = _with_services(args, settings, lambda svc: flows.devices(svc, args.openid))
    sessions = [{k: v for k, v in vars(d).items() if k != "current"} for d in found]
    return {"openid_hash": hash_openid(settings.openid_hash_key, args.openid), "sessions": sessions}


def _subject_revoke(settings: Settings, subject: str) -> dict[str, Any]:
    deployment = build_deployment(settings)
    try:
        ended = flows.revoke_subject(deployment, subject)
    finally:
        deployment.close()
    key = settings.openid_hash_key
    return {
        "revoked": [{"app": app, "openid_hash": hash_openid(key, o)} for app, o in ended],
    }


def _session_revoke(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    if args.subject is not None:
        return _subject_revoke(settings, args.subject)

    def revoke(svc: Services) -> dict[str, Any]:
        before = svc.store.describe(args.openid)
        flows.revoke(svc, args.openid)  # what logout does, under the openid lock
        return {"revoked": True, "before": before, "after": svc.store.describe(args.openid)}

    outcome = _with_services(args, settings, revoke)
    return {"openid_hash": hash_openid(settings.openid_hash_key, args.openid), **outcome}


def _audit_tail(args: argparse.Namespace, settings: Settings) -> str:
    if not settings.audit_stream_maxlen:
        raise StreamOff()
    found = _with_services(args, settings, lambda svc: svc.store.audit_tail(max(1, args.n)))
    return "\n".join(json.dumps({"id": entry_id, **fields}) for entry_id, fields in found)


class StreamOff(Exception):
    """``audit tail`` with ``AUDIT_STREAM_MAXLEN=0``: the records are in the log only."""


def _hash_openid(args: argparse.Namespace, settings: Settings) -> str:
    """The hash, and under it the previous key's while LOG_HASH_KEY_PREVIOUS is set (a search
    across a rotation looks for both)."""
    hashed = hash_openid(settings.openid_hash_key, args.openid)
    previous = settings.openid_hash_key_previous
    return hashed if previous is None else f"{hashed}\n{hash_openid(previous, args.openid)}"


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
    begin_request(f"admin-{secrets.token_hex(8)}").app = args.app  # its audit records' request
    try:
        result = command(args, settings)
    except StreamOff:
        off = "the audit stream is off (AUDIT_STREAM_MAXLEN=0): see the bff.audit log"
        print(f"bff-admin: {off}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    except UnknownAppName as exc:
        names = ", ".join(app.name for app in settings.apps)
        print(f"bff-admin: no app {exc} in this deployment (apps: {names})", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    except BffError as exc:  # Redis down (fail closed), the openid lock held
        print(f"bff-admin: {exc.code}: {exc.message}", file=sys.stderr)  # noqa: T201
        return EXIT_FAILED
    finally:
        end_request()
    text = result if isinstance(result, str) else json.dumps(result, indent=2)
    print(text)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
