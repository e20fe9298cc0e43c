"""bff: the login backend-for-frontend between a WeChat mini program and a Bamboocloud IDaaS.

A request enters through :func:`create_app` (gunicorn: ``bff:create_app()``) into ``bff/web``,
which calls the flows in ``bff/flows/``; they use the limiter, the session store and the clients
(``bff/clients``) wired together in ``bff/services.py``. README's "Layout" has the map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bff.version import __version__

__all__ = ["__version__", "create_app"]

if TYPE_CHECKING:
    from flask import Flask

    from bff.services import Deployment
    from bff.settings import Settings


def create_app(settings: Settings | None = None, deployment: Deployment | None = None) -> Flask:
    """Create and configure the BFF application (one per gunicorn worker).

    The imports are here, not at the top, so that ``import bff.flows`` (from a CLI or a worker)
    does not load Flask.
    """
    import logging

    from bff.observability import configure_logging, record_build
    from bff.server_settings import remembered
    from bff.services import build_deployment
    from bff.settings import load_settings
    from bff.version import build_commit
    from bff.web.errors import register_error_handlers
    from bff.web.json import BffFlask
    from bff.web.request_log import register_request_hooks
    from bff.web.tracing import configure_tracing
    from bff.web.views import BLUEPRINTS

    validated = remembered()  # under gunicorn: what the master validated last
    settings = settings or (validated[0] if validated else load_settings())
    app = BffFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    configure_logging(settings.log_level)
    app.extensions["bff"] = deployment or build_deployment(settings)
    register_request_hooks(app)  # first: later logs and errors carry request_id
    register_error_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    configure_tracing(app)  # only when the OTEL_* variables ask for it
    commit = build_commit()
    record_build(commit)
    logging.getLogger("bff.app").info(
        "bff started", extra={"commit": commit, "settings": settings.redacted()}
    )
    return app
