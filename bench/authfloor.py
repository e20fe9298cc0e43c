"""The stack floor of a forward-auth check: the least code on bff's own stack.

Flask and redis-py under gunicorn (bench/procs.py FLOOR_WORKER_ARGS), on the same Redis, keys
and nginx as bff's ``GET /api/v1/auth``: the handle's SHA-256 names ``{prefix}:handle:{digest}``,
whose openid names ``{prefix}:session:{openid}``; a live session answers 200 with the identity
headers. Two GETs (two round trips: the second key is read from the first); no tombstones,
``last_used``, id_token renewal, logs or metrics. bff ÷ floor is what those cost.

    gunicorn -k gevent -w 2 -b 127.0.0.1:8001 bench.authfloor:app  # env: REDIS_URL, *_PREFIX
"""

import hashlib
import json
import os
import time

import redis
from flask import Flask, Response, request

PREFIX = os.environ.get("REDIS_KEY_PREFIX", "bff")

app = Flask(__name__)
pool = redis.BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=64, timeout=1)
store = redis.Redis(connection_pool=pool)


def refuse(code):
    body = json.dumps({"error_code": code})
    return Response(body, 401, {"X-BFF-Error": code}, content_type="application/json")


@app.get("/api/v1/auth")
def check():
    scheme, _, handle = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not handle:
        return refuse("BFF.UNAUTHENTICATED")
    digest = hashlib.sha256(handle.encode()).hexdigest()
    raw = store.get(f"{PREFIX}:handle:{digest}")
    if raw is None:
        return refuse("BFF.UNAUTHENTICATED")
    record = json.loads(raw)
    raw = store.get(f"{PREFIX}:session:{record['openid']}")
    session = json.loads(raw) if raw else None
    if session is None or session["expire_at"] <= time.time():
        return refuse("BFF.SESSION_EXPIRED")
    identity = {
        "X-BFF-Openid": record["openid"],
        "X-BFF-Unionid": record.get("unionid") or "",
        "X-BFF-Subject": session.get("id_token_sub") or "",
        "X-BFF-App": "default",
    }
    return Response(b"", 200, identity)
