"""The stack floor: a SUCCESS login and bind in the least code on bff's own stack.

Flask, requests and redis-py, run by the harness under gunicorn (2 gevent workers by default),
on the same stub, Redis and load as bff: gateway identity, the same URLs, Redis keys and trimmed
answers, and nothing else (no schemas, limits, lock, id_token verification, logs or metrics).
bff ÷ floor is what those cost on top of the job itself.

    gunicorn -k gevent -w 2 -b 127.0.0.1:8001 bench.floor:app   # env: see the first lines
"""

import hmac
import json
import os
import time

import redis
import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter

IDAAS = os.environ["IDAAS_BASE_URL"].rstrip("/")
CLIENT_ID = os.environ["IDAAS_CLIENT_ID"]
PREFIX = os.environ.get("REDIS_KEY_PREFIX", "bff")
SECRET = os.environ["GATEWAY_SECRET"].encode()
FORWARD = ("X-operating-sys-version", "X-device-fingerprint", "User-Agent")

app = Flask(__name__)
# Bounded like bff's, waiting for a free connection: redis-py 8 pools raise past 100.
pool = redis.BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=64, timeout=1)
store = redis.Redis(connection_pool=pool)
http = requests.Session()
http.mount("http://", HTTPAdapter(pool_maxsize=1024))  # one kept connection per request in flight


def answer(status, body):
    return Response(json.dumps(body), status, content_type="application/json")


def gateway_openid():
    offered = request.headers.get("X-Gateway-Secret", "").encode()
    return request.headers.get("X-WX-OPENID") if hmac.compare_digest(offered, SECRET) else None


def spend(openid, path, body, state_token=None):
    headers = {name: request.headers[name] for name in FORWARD if name in request.headers}
    headers.update({"X-client-id": CLIENT_ID, "Content-Type": "application/json"})
    if state_token:
        headers["X-state-token"] = state_token
    resp = http.post(IDAAS + path, data=json.dumps(body), headers=headers, timeout=(2, 8))
    got = json.loads(resp.content)
    if resp.status_code != 200 or got.get("status") != "SUCCESS":
        return answer(502, {"error_code": "BFF.UPSTREAM_BAD_RESPONSE"})
    session = {"session_token": got["session_token"], "expire_at": int(time.time()) + got["expire"]}
    with store.pipeline(transaction=False) as pipe:
        pipe.set(f"{PREFIX}:session:{openid}", json.dumps(session), ex=got["expire"])
        pipe.delete(f"{PREFIX}:pending:{openid}")
        pipe.execute()
    return answer(200, {"status": "SUCCESS", "expire": got["expire"], "id_token": got["id_token"]})


@app.post("/api/v1/login")
def login():
    openid = gateway_openid()
    if not openid:
        return answer(401, {"error_code": "BFF.UNAUTHENTICATED"})
    code = request.get_json()["code"]
    return spend(openid, "/api/v2/sdk/login/wechat-miniprogram", {"code": code})


@app.post("/api/v1/bind/username-password")
def bind():
    openid = gateway_openid()
    if not openid:
        return answer(401, {"error_code": "BFF.UNAUTHENTICATED"})
    pending = store.get(f"{PREFIX}:pending:{openid}")
    if pending is None:
        return answer(409, {"error_code": "BFF.NO_PENDING_BIND"})
    body = request.get_json()
    upstream = {"user_name": body["user_name"], "password": body["password"]}
    path = "/api/v2/sdk/social/username-password-bind"
    return spend(openid, path, upstream, json.loads(pending)["state_token"])
