"""bff: the login backend-for-frontend between a WeChat mini program and a Bamboocloud IDaaS."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

__version__ = "0.1.0"


def create_app(settings: object | None = None, services: object | None = None) -> Flask:
    """Create and configure the BFF application (one per gunicorn worker)."""
    from bff.errors import register_error_handlers
    from bff.observability import configure_logging, log_hash_key, register_request_hooks
    from bff.services import Services, build_services
    from bff.settings import Settings, load_settings
    from bff.views import auth, health, signin

    settings = settings if isinstance(settings, Settings) else load_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BFF_LOG_HASH_KEY"] = log_hash_key(settings)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    configure_logging(settings)
    app.extensions["bff"] = services if isinstance(services, Services) else build_services(settings)
    # X-device-ip: the TRUSTED_PROXY_COUNT-th X-Forwarded-For entry from the right (SPEC §4).
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)  # type: ignore[method-assign]
    register_request_hooks(app)  # first: later logs and errors carry request_id
    register_error_handlers(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(signin.bp)
    app.register_blueprint(health.bp)
    logging.getLogger("bff.app").info("bff started", extra={"settings": settings.redacted()})
    return app
