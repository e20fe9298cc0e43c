"""The flows run without Flask: a CLI or a worker can sign a user in with Services alone."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest

from bff import flows
from bff.audit import mask_ip
from bff.credentials import UsernamePassword
from bff.errors import NoPendingBind
from bff.models import Caller, Device, Outcome
from bff.services import build_services
from bff.settings import load_settings
from tests.support.app import PASSWORD

DEVICE = Device("iOS 17.4", "fp-flows-0001", "worker/1.0", "zh", "192.0.2.7")


@pytest.fixture
def svc(env, idaas_sim, wechat_sim):
    services = build_services(load_settings(env))
    yield services
    services.close()


def test_importing_the_flows_loads_no_flask():
    code = (
        "import sys, bff.flows, bff.services; "
        "print(sorted(m for m in ('flask', 'werkzeug') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_login_then_bind_outside_any_request(svc, idaas_sim, wechat_sim, redis, key_prefix):
    caller = Caller("o_flows_" + secrets.token_hex(6), None, None)
    code = wechat_sim.issue_code(caller.openid)
    outcome = flows.login(svc, caller, code, DEVICE)
    assert outcome == Outcome("SOCIAL_BIND", flows=("VERIFY_PHONE",))
    pending = json.loads(redis.get(f"{key_prefix}:pending:{caller.openid}"))
    assert pending["state_token"] == idaas_sim.state_tokens[-1]

    credential = UsernamePassword("alice", PASSWORD)
    outcome = flows.bind(svc, caller, credential, DEVICE)
    assert outcome.status == "SUCCESS" and outcome.id_token == idaas_sim.id_tokens[-1]
    cached = json.loads(redis.get(f"{key_prefix}:session:{caller.openid}"))
    assert cached["session_token"] == idaas_sim.session_tokens[-1]
    sent = [r for r in idaas_sim.requests if r.path.endswith("/username-password-bind")][-1]
    assert sent.headers["X-device-ip"] == "192.0.2.7"  # the Device given, no request needed

    with pytest.raises(NoPendingBind):  # the state token was spent
        flows.bind(svc, caller, credential, DEVICE)


@pytest.mark.parametrize(
    ("ip", "shown"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1:2::7", "2001:db8:1::/48"),
        ("2001:db8::1", "2001:db8::/48"),
        ("::1", "::/48"),
        ("not an ip", None),
        (None, None),
    ],
)
def test_a_device_list_shows_the_network_never_the_address(ip, shown):
    assert mask_ip(ip) == shown
