"""The endpoints, one module per part of the API; importing this package declares them all."""

from __future__ import annotations

from bff.web.views import bind, gateway, ops, session, signin

BLUEPRINTS = (signin.bp, bind.bp, session.bp, gateway.bp, ops.bp)
