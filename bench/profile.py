"""py-spy on one worker of bff and of the floor under load, folded into "where does a bind's CPU
go", side by side.

Samples are taken only while a thread holds the GIL (``--gil``; sampling every running thread
slowed the worker down by more than half): Python time, not waits on the IDaaS or Redis.
Each sample is charged to what the app's code was doing: the first
library frame below the deepest frame of the app (``bff/``, or the floor's ``bench/``; e.g.
``jwt`` when ``bff/id_token.py`` called PyJWT), ``bff`` for the app's own lines, or, outside any
of its frames, the outermost library (``gunicorn``, ``flask``/``werkzeug`` request plumbing).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")
STDLIB = re.compile(r"/lib/python3\.\d+/(?P<mod>[A-Za-z_]+)")
SITE = re.compile(r"site-packages/(?P<mod>[A-Za-z_][A-Za-z0-9_]*)")
GROUPS = {
    "jwt": "id_token verification (PyJWT + cryptography)",
    "cryptography": "id_token verification (PyJWT + cryptography)",
    "marshmallow": "schemas (marshmallow)",
    "logging": "logging (stdlib + python-json-logger)",
    "pythonjsonlogger": "logging (stdlib + python-json-logger)",
    "prometheus_client": "metrics (prometheus_client, multiprocess files)",
    "redis": "Redis client (redis-py)",
    "limits": "rate limiter (limits + redis-py)",
    "requests": "IDaaS HTTP client (requests/urllib3/http.client)",
    "urllib3": "IDaaS HTTP client (requests/urllib3/http.client)",
    "http": "IDaaS HTTP client (requests/urllib3/http.client)",
    "pybreaker": "circuit breaker (pybreaker)",
    "flask": "Flask/werkzeug (routing, request, response)",
    "werkzeug": "Flask/werkzeug (routing, request, response)",
    "gunicorn": "gunicorn (accept, parse, write)",
    "json": "json (stdlib)",
    "bff": "bff's own code",
}


def module_of(frame: str) -> tuple[str, str]:
    """(module, function) of one py-spy frame ``func (path:line)``."""
    match = FRAME.match(frame)
    func, path = (match["func"], match["file"]) if match else (frame, "")
    found = SITE.search(path) or STDLIB.search(path)
    if found:
        return found["mod"], func
    # py-spy prints paths relative to sys.path: "bff/flows.py", "redis/client.py", "json/..."
    top = re.split(r"[/.]", path.lstrip("/"), maxsplit=1)[0] if path else ""
    return (top or "other"), func


def charge(stack: list[str], own: str = "bff") -> tuple[str, str]:
    """(component, callee) that one sample's stack (root first) is charged to; ``own``: the
    app's top-level package (``bff``, or ``bench`` for the floor), charged as ``bff``."""
    mods = [("bff", f) if m == own else (m, f) for m, f in (module_of(f) for f in stack)]
    deepest_bff = max((i for i, (m, _) in enumerate(mods) if m == "bff"), default=-1)
    if deepest_bff < 0:
        plumbing = ("other", "threading", "concurrent")  # thread-pool frames around gunicorn's
        outer = next((m for m, _ in mods if m not in plumbing), "other")
        return outer, outer
    below = mods[deepest_bff + 1 :]
    if not below:
        return "bff", f"bff:{mods[deepest_bff][1]}"
    mod, func = below[0]
    return mod, f"{mod}:{func}"


def fold(raw: str, own: str = "bff") -> dict[str, Any]:
    components: Counter[str] = Counter()
    callees: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        component, callee = charge(frames, own)
        components[GROUPS.get(component, component)] += count
        callees[callee] += count
        total += count
    share = {k: round(100 * v / total, 1) for k, v in components.most_common()} if total else {}
    top = {k: round(100 * v / total, 1) for k, v in callees.most_common(15)} if total else {}
    return {"samples": total, "share_pct": share, "top_callees_pct": top}


def profile_worker(
    pid: int,
    seconds: float,
    workdir: Path,
    drive: Callable[[], dict[str, Any]],
    own: str = "bff",
) -> dict[str, Any]:
    """Sample ``pid`` with py-spy while ``drive`` puts load on it; ``own`` as for :func:`fold`."""
    out = workdir / f"py-spy-{pid}.txt"
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--rate", "200", "--gil", "--format", "raw", "--output", str(out)]
    result: dict[str, Any] = {}
    load = threading.Thread(target=lambda: result.update(drive()), daemon=True)
    load.start()
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    load.join(seconds + 60)
    if done.returncode != 0 or not out.exists():
        return {"error": (done.stderr or done.stdout)[-500:]}
    folded = fold(out.read_text(), own)
    folded["under_load_rps"] = result.get("rps")
    return folded
