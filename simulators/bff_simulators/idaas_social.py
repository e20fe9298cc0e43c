"""IDaaS simulator: self-service with the id_token, the user's bound social accounts.

Marks: [doc] the vendor's documentation says so, [oem] the same product sold under another name
(Huawei Cloud OneAccess) does, [assumed] not seen documented.

Both routes take `Authorization: Bearer <id_token>`: an id_token this simulator issued (recorded
in `id_tokens`) for the request's client, signed with its key, not expired; anything else is
PARAM.0016 "IdToken is invalid or expired" [doc] (HTTP 400, as the other errors).

- `GET /api/v2/sdk/social` [doc] -> `[{"id", "socialUid", "channel", "clientId"}]`: every
  binding of the user, of every client of the tenant (`id`: the simulator's record id, derived
  from the binding; `socialUid`: the openid; `channel`: "WECHAT_MINIPROGRAM").
- `POST /api/v2/sdk/social/unbind-account` `{"id"}` [doc] -> `{"status": "SUCCESS"}` (padded as
  the login answers are): the binding is gone, that openid's next login answers unbound. An id
  that is not one of the user's bindings: SOCIAL.1004 "social account not found" (the
  simulator's own code).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jwt

from ._idaas_core import IdaasCore, RouteTable
from ._server import RecordedRequest, Reply, Response, json_response

CHANNEL = "WECHAT_MINIPROGRAM"


def record_id(binding_key: str) -> str:
    """The id of a binding's social record (stable for the binding)."""
    return hashlib.sha256(binding_key.encode()).hexdigest()[:24]


def _split_key(sim: IdaasCore, key: str) -> tuple[str, str]:
    """(client id, openid) of a binding key (see IdaasCore.binding_key)."""
    client, sep, openid = key.partition("/")
    if sep and client in sim.clients and client != sim.client_id:
        return client, openid
    return sim.client_id, key


def _invalid(sim: IdaasCore) -> Reply:
    return sim.error("PARAM.0016", "IdToken is invalid or expired")


def _subject(claims: dict[str, Any]) -> Any:
    """`sub`, or the userName of the `api` claim (id_token_mode "api_claim")."""
    if "sub" in claims:
        return claims["sub"]
    try:
        api = json.loads(claims.get("api") or "")
    except (TypeError, ValueError):
        return None
    return api.get("userName") if isinstance(api, dict) else None


def bearer_user(sim: IdaasCore, req: RecordedRequest) -> str:
    """The user name behind the request's `Authorization: Bearer <id_token>` (else PARAM.0016)."""
    scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
    token = token.strip()
    with sim.lock:
        issued = bool(token) and token in sim.id_tokens
    if scheme.lower() != "bearer" or not issued:
        raise _invalid(sim)
    public_key = sim.minter.key.private_key.public_key()
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            audience=sim.current_client(),
            issuer=sim.issuer,
        )
    except jwt.PyJWTError:
        raise _invalid(sim) from None
    subject = _subject(claims)
    with sim.lock:
        user_name = next((u for u in sim.users if sim.subject_of(u) == subject), None)
    if user_name is None:
        raise _invalid(sim)
    return user_name


def _records(sim: IdaasCore, user_name: str) -> list[dict[str, str]]:
    records = []
    with sim.lock:
        for key, owner in sim.bindings.items():
            if owner == user_name:
                client, openid = _split_key(sim, key)
                records.append(
                    {
                        "id": record_id(key),
                        "socialUid": openid,
                        "channel": CHANNEL,
                        "clientId": client,
                    }
                )
    return records


def social_list(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /api/v2/sdk/social [doc]: the id_token user's bound social accounts."""
    sim.check_common(req, needs_body=False)
    return json_response(_records(sim, bearer_user(sim, req)))


def unbind_account(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/social/unbind-account {"id"} [doc]: remove one of the user's bindings."""
    body = sim.check_common(req)
    user_name = bearer_user(sim, req)
    (wanted,) = sim.require(body, "id")
    with sim.lock:
        mine = [key for key, owner in sim.bindings.items() if owner == user_name]
        key = next((k for k in mine if record_id(k) == wanted), None)
        if key is None:
            raise sim.error("SOCIAL.1004", "social account not found")
        del sim.bindings[key]
    return json_response({"status": sim.pad("SUCCESS")})


SOCIAL_ROUTES: RouteTable = [
    ("GET", "/api/v2/sdk/social", social_list),
    ("POST", "/api/v2/sdk/social/unbind-account", unbind_account),
]
