"""The endpoints, one module per part of the API; importing this package declares them all."""

from __future__ import annotations

from bff.web.views import bind, gateway, idp, ops, session, signin, steps

BLUEPRINTS = (signin.bp, bind.bp, steps.bp, session.bp, gateway.bp, idp.bp, ops.bp)
