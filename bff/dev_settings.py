"""The development server's settings (``python -m bff``, what ``make run`` starts): its loopback
ports and the embedded defaults it passes to ``load_settings``. The production entry point has
none of these."""

from __future__ import annotations

from collections.abc import Mapping

from bff.errors import SettingsError

# The development server's loopback ports (`make run`), each overridable by its variable.
DEV_PORTS = {"bff": 8000, "idaas": 8101, "wechat": 8102, "redis": 6399}
DEV_PORT_VARS = {
    "bff": "BFF_DEV_PORT",
    "idaas": "BFF_DEV_IDAAS_PORT",
    "wechat": "BFF_DEV_WECHAT_PORT",
    "redis": "BFF_DEV_REDIS_PORT",
}


def dev_ports(environ: Mapping[str, str]) -> dict[str, int]:
    """DEV_PORTS with the ``BFF_DEV_*`` variables applied.

    :raises SettingsError: naming the variable whose value is not a port (1-65535).
    """
    ports = dict(DEV_PORTS)
    for part, name in DEV_PORT_VARS.items():
        value = environ.get(name, "").strip()
        if not value:
            continue
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
            raise SettingsError(f"{name}: not a port number (1-65535): {value[:20]!r}")
        ports[part] = int(value)
    return ports


def dev_defaults(ports: Mapping[str, int]) -> dict[str, str]:
    """What the development server (only) passes as ``load_settings(defaults=...)``: the
    embedded simulators and Redis stand-in on these ports."""
    return {
        "IDAAS_BASE_URL": f"http://127.0.0.1:{ports['idaas']}",
        "IDAAS_CLIENT_ID": "dev-client",
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "WECHAT_APPID": "wx-sim-appid",
        "WECHAT_SECRET": "wx-sim-secret",
        "WECHAT_API_BASE": f"http://127.0.0.1:{ports['wechat']}",
        "GATEWAY_SECRET": "dev-gateway-secret",
        "LOG_LEVEL": "INFO",
    }


DEV_DEFAULTS: dict[str, str] = dev_defaults(DEV_PORTS)
