"""Tables (markdown and terminal) and charts (PNG) from one run's results; nothing here measures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.steps import APPS, NOISE_LIMIT_CORES, SYSTEMS, config_name

QS = ("p50", "p90", "p99")
Row = dict[str, Any]


def _rows(data: dict[str, Any], kind: str) -> list[Row]:
    return [r for r in data["results"] if r["kind"] == kind]


def _find(data: dict[str, Any], **want: Any) -> Row | None:
    for r in data["results"]:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def added(data: dict[str, Any], r: Row) -> dict[str, float]:
    """The system's percentile minus the stub's: same scenario, kind, rate and upstream."""
    if r["kind"] != "fixed_rate":
        return {}
    stub = _find(
        data,
        kind="fixed_rate",
        system="stub",
        scenario=r["scenario"],
        latency=r["latency"],
        rate=r["rate"],
    )
    if stub is None:
        return {}
    return {q: round(r["latency_ms"][q] - stub["latency_ms"][q], 2) for q in QS}


def _errors(r: Row | None) -> str:
    if r is None:
        return "—"
    return ", ".join(f"{k} {v}" for k, v in r.get("errors", {}).items()) or "0"


def _num(value: float | None, spec: str = ".2f", sign: bool = False) -> str:
    if value is None:
        return "—"
    return format(value, ("+" if sign else "") + spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _rss_max(data: dict[str, Any], system: str) -> float | None:
    """The largest worker RSS (MiB) of ``system`` after any rig of the run."""
    values = [
        mib
        for entry in data.get("rss", [])
        if entry["system"] == system and "worker_class" not in entry
        for mib in entry["workers_mib"]
    ]
    return max(values) if values else None


# -- the four systems side by side, the ratios and the targets


def headline(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per scenario: each system's numbers where the targets are read (plan's headline
    upstream latency, fixed rate and wrk connections), and the ratios between systems."""
    plan = data["plan"]
    latency, rate = plan["headline_latency"], plan["headline_rate"]
    connections = plan["headline_connections"]
    out: dict[str, dict[str, Any]] = {}
    for scenario in plan["scenarios"]:
        systems: dict[str, dict[str, Any]] = {}
        for system in SYSTEMS:
            base = {"scenario": scenario, "system": system, "latency": latency}
            top = _find(data, kind="max_throughput", connections=connections, **base)
            fixed = _find(data, kind="fixed_rate", rate=rate, **base)
            add = added(data, fixed) if fixed else {}
            systems[system] = {
                "max_rps": top["rps"] if top else None,
                "max_errors": _errors(top),
                "cpu_ms": fixed["cpu_ms_per_req"] if fixed else None,
                "p50": fixed["latency_ms"]["p50"] if fixed else None,
                "p99": fixed["latency_ms"]["p99"] if fixed else None,
                "added_p50": add.get("p50"),
                "added_p99": add.get("p99"),
                "fixed_errors": _errors(fixed),
                "redis_rt": fixed.get("redis_round_trips_per_req") if fixed else None,
                "redis_cmds": _commands(fixed),
                "rss_mib": _rss_max(data, system) if system in APPS else None,
                "foreign": max((r["foreign_cores"] for r in (top, fixed) if r), default=None),
            }
        bff, floor, nginx = systems["bff"], systems["floor"], systems["nginx"]
        out[scenario] = {
            "systems": systems,
            "ratios": {
                "bff ÷ floor, max throughput": _ratio(bff["max_rps"], floor["max_rps"]),
                "bff ÷ floor, CPU per request": _ratio(bff["cpu_ms"], floor["cpu_ms"]),
                "bff ÷ nginx, max throughput": _ratio(bff["max_rps"], nginx["max_rps"]),
                "floor ÷ nginx, max throughput": _ratio(floor["max_rps"], nginx["max_rps"]),
            },
        }
    return out


def _commands(row: Row | None) -> float | None:
    """Redis commands per request (INFO commandstats, a script's own commands included)."""
    per = row.get("redis_commands_per_req") if row else None
    return round(sum(per.values()), 2) if per else None


def targets(data: dict[str, Any]) -> list[tuple[str, str, str, str, bool | None]]:
    """The performance targets: (what, before this round's changes, goal, measured, met?)."""
    head = headline(data)
    plan = data["plan"]
    lat, rate, conns = plan["headline_latency"], plan["headline_rate"], plan["headline_connections"]

    def get(scenario: str, system: str, key: str) -> float | None:
        value = head.get(scenario, {}).get("systems", {}).get(system, {}).get(key)
        return value if isinstance(value, int | float) else None

    def ratio(scenario: str, name: str) -> float | None:
        value = head.get(scenario, {}).get("ratios", {}).get(name)
        return value if isinstance(value, int | float) else None

    def both(fn: Callable[[str], float | None], spec: str, sign: bool = False) -> str:
        return f"bind {_num(fn('bind'), spec, sign)}, login {_num(fn('login'), spec, sign)}"

    def met(*checks: bool | None) -> bool | None:
        return None if any(c is None for c in checks) else all(bool(c) for c in checks)

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    def at_least(value: float | None, limit: float) -> bool | None:
        return None if value is None else value >= limit

    rt = {s: get(s, "bff", "redis_rt") for s in ("bind", "login")}
    cmds = {s: get(s, "bff", "redis_cmds") for s in ("bind", "login")}
    cpu = {s: ratio(s, "bff ÷ floor, CPU per request") for s in ("bind", "login")}
    thr = {s: ratio(s, "bff ÷ floor, max throughput") for s in ("bind", "login")}
    ngx = {s: ratio(s, "bff ÷ nginx, max throughput") for s in ("bind", "login")}
    p99 = {s: get(s, "bff", "added_p99") for s in ("bind", "login")}
    floor_p99 = {s: get(s, "floor", "added_p99") for s in ("bind", "login")}
    p99_ratio = {s: _ratio(p99[s], floor_p99[s]) for s in ("bind", "login")}
    rss = _rss_max(data, "bff")
    return [
        (
            "Redis round trips / commands per SUCCESS bind and login (gateway mode)",
            "2 / 17 (bind)",
            "≤ 2 / ≤ 8",
            f"bind {_num(rt['bind'])} / {_num(cmds['bind'])}, "
            f"login {_num(rt['login'])} / {_num(cmds['login'])} (floor: "
            + both(lambda s: get(s, "floor", "redis_cmds"), ".2f")
            + " commands)",
            met(
                *(at_most(rt[s], 2.05) for s in ("bind", "login")),
                *(at_most(cmds[s], 8.05) for s in ("bind", "login")),
            ),
        ),
        (
            f"CPU per SUCCESS bind, bff ÷ floor ({rate}/s, {lat} ms IDaaS)",
            "1.52 (5.0 / 3.3 ms)",
            "≤ 1.2",
            both(cpu.get, ".2f")
            + f" (bff {_num(get('bind', 'bff', 'cpu_ms'))} ms, floor "
            + f"{_num(get('bind', 'floor', 'cpu_ms'))} ms per bind)",
            at_most(cpu["bind"], 1.2),
        ),
        (
            f"binds/s at {conns} connections, {lat} ms IDaaS, bff ÷ floor",
            "0.78 (539 / 688)",
            "≥ 0.9",
            both(thr.get, ".2f")
            + f" (bff {_num(get('bind', 'bff', 'max_rps'), '.0f')}/s, floor "
            + f"{_num(get('bind', 'floor', 'max_rps'), '.0f')}/s)",
            at_least(thr["bind"], 0.9),
        ),
        (
            f"added p99 over the stub at {rate}/s, {lat} ms IDaaS, bff ÷ floor",
            "1.75 (+21 / +12 ms)",
            "≤ 1.5",
            both(p99_ratio.get, ".2f")
            + f" (bind: bff {_num(p99['bind'], '.1f', True)} ms, "
            + f"floor {_num(floor_p99['bind'], '.1f', True)} ms)",
            at_most(p99_ratio["bind"], 1.5),
        ),
        (
            "RSS per bff worker after the run (VmRSS, max)",
            "58 MiB",
            "≤ 80 MiB",
            f"{_num(rss, '.1f')} MiB (floor {_num(_rss_max(data, 'floor'), '.1f')} MiB)",
            at_most(rss, 80),
        ),
        (
            f"product goal: binds/s at {conns} connections, bff ÷ nginx",
            "—",
            "≥ 0.8",
            both(ngx.get, ".2f") + f" (nginx {_num(get('bind', 'nginx', 'max_rps'), '.0f')}/s)",
            at_least(ngx["bind"], 0.8),
        ),
    ]


def _verdict(ok: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[ok]


def side_by_side_md(data: dict[str, Any]) -> list[str]:
    plan = data["plan"]
    lat, rate, conns = plan["headline_latency"], plan["headline_rate"], plan["headline_connections"]
    out = []
    for scenario, head in headline(data).items():
        out += [
            f"### {scenario}: {lat} ms IDaaS; max throughput with wrk at {conns} connections, "
            f"the rest at {rate}/s open loop",
            "",
            "| system | max req/s | errors (wrk) | CPU ms/req | p50 | p99 | added p50 | added p99 "
            "| errors (open loop) | Redis round trips/req | RSS per worker (MiB, max) "
            "| foreign cores |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for system, v in head["systems"].items():
            out.append(
                f"| {system} | {_num(v['max_rps'], '.0f')} | {v['max_errors']} "
                f"| {_num(v['cpu_ms'], '.3f')} | {_num(v['p50'])} | {_num(v['p99'])} "
                f"| {_num(v['added_p50'], '.2f', True)} | {_num(v['added_p99'], '.2f', True)} "
                f"| {v['fixed_errors']} | {_num(v['redis_rt'])} | {_num(v['rss_mib'], '.1f')} "
                f"| {_num(v['foreign'])} |"
            )
        out += ["", "| ratio | value |", "|---|---|"]
        out += [f"| {k} | {_num(v)} |" for k, v in head["ratios"].items()]
        out.append("")
    return out


def terminal(data: dict[str, Any]) -> list[str]:
    """The four systems and the ratios, for the end of a run."""
    plan = data["plan"]
    lat, rate, conns = plan["headline_latency"], plan["headline_rate"], plan["headline_connections"]
    lines = []
    for scenario, head in headline(data).items():
        lines += [
            "",
            f"{scenario}, {lat} ms IDaaS (max: wrk c={conns}; the rest at {rate}/s open loop)",
            f"  {'system':<6} {'max/s':>7} {'CPU ms':>7} {'p50':>7} {'p99':>7} {'+p50':>7} "
            f"{'+p99':>7} {'redis rt':>8} {'RSS MiB':>8} {'foreign':>7}",
        ]
        for system, v in head["systems"].items():
            lines.append(
                f"  {system:<6} {_num(v['max_rps'], '.0f'):>7} {_num(v['cpu_ms'], '.3f'):>7} "
                f"{_num(v['p50']):>7} {_num(v['p99']):>7} {_num(v['added_p50'], '.2f', True):>7} "
                f"{_num(v['added_p99'], '.2f', True):>7} {_num(v['redis_rt']):>8} "
                f"{_num(v['rss_mib'], '.1f'):>8} {_num(v['foreign']):>7}"
            )
        lines.append("  " + "; ".join(f"{k} {_num(v)}" for k, v in head["ratios"].items()))
    lines += ["", "targets:"]
    for what, _before, goal, measured, ok in targets(data):
        lines.append(
            f"  [{ {True: 'met', False: 'NOT met', None: '?'}[ok] }] {what} {goal}: {measured}"
        )
    busy = disturbed(data)
    if busy:
        lines += ["", busy]
    return lines


def disturbed(data: dict[str, Any]) -> str:
    """A warning when other processes used the CPUs during the steps the targets are read from."""
    worst = max(
        (
            v["foreign"]
            for head in headline(data).values()
            for v in head["systems"].values()
            if v["foreign"] is not None
        ),
        default=0.0,
    )
    if worst <= NOISE_LIMIT_CORES:
        return ""
    return (
        f"WARNING: other processes used up to {worst} cores during these steps (limit "
        f"{NOISE_LIMIT_CORES}): the machine was busy, these numbers are not evidence."
    )


# -- the whole page


def _header(data: dict[str, Any], title: str) -> list[str]:
    m = data["machine"]
    return [
        f"# {title} (generated by `bench/run.py`; do not edit by hand)",
        "",
        f"Command: `{data['command']}` (took {data['elapsed_s']} s). Raw results: "
        "`bench/out/*.json` of that run (not kept in docs/).",
        "",
        f"bff measured: commit {data['code']['commit']}, uncommitted changes in: "
        f"{data['code']['uncommitted']}",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in m.items()),
        "",
    ]


def markdown(data: dict[str, Any]) -> str:
    plan = data["plan"]
    out = _header(data, "Benchmark results")
    out += [
        "## The four systems side by side",
        "",
        "*stub*: the IDaaS stub alone (the IDaaS path). *nginx*: nginx `proxy_pass` to the stub. "
        "*floor*: `bench/floor.py`, the same SUCCESS login and bind in the least code on bff's "
        f"stack ({_floor_args(data)}). *bff*: `gunicorn -c config/gunicorn.conf.py "
        "'bff:create_app()'`, `IDENTITY_SOURCE=gateway`. *added*: the system's percentile minus "
        "the stub's at the same rate. CPU: the system's own processes (apps: the gunicorn workers; "
        "nginx: its workers; stub: the stub) per answered request. *foreign cores*: the most CPU "
        "that processes outside the benchmark used during the row's two steps.",
        "",
        *([f"**{disturbed(data)}**", ""] if disturbed(data) else []),
        *side_by_side_md(data),
        f"## Targets ({plan['headline_latency']} ms IDaaS, 2 cores, load generator on "
        "the same machine)",
        "",
        "| target | before | goal | measured | met? |",
        "|---|---|---|---|---|",
        *(
            f"| {what} | {before} | {goal} | {measured} | {_verdict(ok)} |"
            for what, before, goal, measured, ok in targets(data)
        ),
        "",
        *_answers_md(data),
        *_fixed_md(data),
        *_max_md(data),
        *_redis_md(data),
        *_logs_md(data),
        *_micro_md(data),
        *_profile_md(data),
    ]
    return "\n".join(out) + "\n"


def _floor_args(data: dict[str, Any]) -> str:
    args = {a["args"] for a in data.get("app_logs", []) if a["system"] == "floor"}
    return "gunicorn " + (" / ".join(sorted(args)) or "?")


def _answers_md(data: dict[str, Any]) -> list[str]:
    answers = data.get("answers", [])
    if not answers:
        return []
    out = ["## One SUCCESS of each app, checked before measuring", ""]
    out += [
        "| upstream | scenario | system | HTTP | status | answer keys |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {a['latency']} ms | {a['scenario']} | {a['system']} | {a['http_status']} "
        f"| {a['status']} | {', '.join(a['keys'])} |"
        for a in answers
    ]
    return [*out, ""]


def _fixed_md(data: dict[str, Any]) -> list[str]:
    out = [
        "## Fixed request rates (open loop; latency from the time each request was due)",
        "",
        "| upstream | scenario | rate/s | system | answered/s | p50 | p90 | p99 | added p50 "
        "| added p90 | added p99 | errors | CPU ms/req | foreign cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in _rows(data, "fixed_rate") + _rows(data, "sustained"):
        lat, add = r["latency_ms"], added(data, r)
        sustained = " (sustained)" if r["kind"] == "sustained" else ""
        out.append(
            f"| {r['latency']} ms | {r['scenario']} | {r['rate']:.0f}{sustained}"
            f" | {r['system']} | {r['achieved_rps']} | "
            + " | ".join(f"{lat[q]:.2f}" for q in QS)
            + " | "
            + " | ".join(f"{add[q]:+.2f}" if add else "" for q in QS)
            + f" | {_errors(r)} | {r['cpu_ms_per_req']:.3f} | {r['foreign_cores']} |"
        )
    out += [
        "",
        "Latencies in ms. *foreign cores*: CPU used meanwhile by processes outside the benchmark "
        "(the machine may be shared; a step above 0.3 is measured again, up to twice, and the "
        "least disturbed kept). *sustained*: bff again at 90 % of its wrk maximum.",
        "",
    ]
    return out


def _max_md(data: dict[str, Any]) -> list[str]:
    out = [
        "## Maximum throughput (wrk, closed loop, a fresh X-WX-OPENID per request)",
        "",
        "| upstream | scenario | system | connections | answered/s | p50 | p99 | errors "
        "| CPU ms/req | foreign cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in _rows(data, "max_throughput"):
        lat = r["latency_ms"]
        out.append(
            f"| {r['latency']} ms | {r['scenario']} | {r['system']} | {r['connections']} "
            f"| {r['rps']} | {lat['p50']:.2f} | {lat['p99']:.2f} | {_errors(r)} "
            f"| {r['cpu_ms_per_req']:.3f} | {r['foreign_cores']} |"
        )
    return [*out, ""]


def _redis_md(data: dict[str, Any]) -> list[str]:
    out = ["## Redis per SUCCESS request (floor and bff steps)", ""]
    out += ["| step | system | round trips | commands (per request) | redis-server CPU ms |"]
    out += ["|---|---|---|---|---|"]
    for r in data["results"]:
        if r["system"] in APPS:
            what = f"{r['scenario']} {r['kind']} {r.get('rate', r.get('connections'))}"
            cmds = ", ".join(f"{k} {v}" for k, v in r["redis_commands_per_req"].items())
            out.append(
                f"| {what} @ {r['latency']} ms | {r['system']} | {r['redis_round_trips_per_req']} "
                f"| {cmds} | {r['redis_cpu_ms_per_req']} |"
            )
    out += [
        "",
        "Round trips: `total_reads_processed` of the harness's own redis-server (one read event "
        "per client round trip; a pipeline counts once), per answered request. Before every step "
        "the database is emptied and, for a bind, a pending bind is written for every openid the "
        "load will use; every step checks that each 200 stored a session (and spent a pending "
        "bind).",
        "",
    ]
    return out


def _logs_md(data: dict[str, Any]) -> list[str]:
    logs = [a for a in data.get("app_logs", []) if a["lines"]]
    if not logs:
        return []
    out = ["## Warnings and errors in the apps' logs", ""]
    for a in logs:
        config = f" [{config_name(a)}]" if config_name(a) else ""
        out.append(
            f"- {a['system']}{config} at {a['latency']} ms: {a['lines']} lines; the commonest:"
        )
        out += [f"  - {n} × `{kind}`" for kind, n in a.get("kinds", {}).items()]
    return [*out, ""]


def _micro_md(data: dict[str, Any]) -> list[str]:
    micro = data.get("micro_us")
    if not micro:
        return []
    out = [
        "## CPU per piece of a bind (bench/micro.py: one process, no gunicorn, µs per call)",
        "",
        f"Other processes used {data.get('micro_foreign_cores', '?')} cores meanwhile "
        "(on a busy machine every row is inflated alike).",
        "",
        "| piece | CPU µs |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in micro.items()),
    ]
    return [*out, ""]


def _profile_md(data: dict[str, Any]) -> list[str]:
    """The components of a worker's CPU, bff beside the floor, per request: each system's share
    of GIL-holding samples times its CPU per request at the same wrk load."""
    prof = data.get("profile") or {}
    if "bff" not in prof:  # a run from before the floor was profiled too
        prof = {"bff": prof} if prof else {}
    if not prof:
        return []
    failed = [f"py-spy failed on {k}: {v.get('error')}" for k, v in prof.items() if "error" in v]
    if failed:
        return [*failed, ""]
    plan = data["plan"]
    cpu_us = {}
    for system, found in prof.items():
        row = _find(
            data,
            kind="max_throughput",
            system=system,
            scenario=found.get("scenario"),
            latency=plan["headline_latency"],
            connections=plan["headline_connections"],
        )
        cpu_us[system] = 1000 * row["cpu_ms_per_req"] if row else 0.0
    systems = list(prof)
    names = list(dict.fromkeys(k for s in systems for k in prof[s]["share_pct"]))
    scenario = prof["bff"].get("scenario", "")
    head = " | ".join(f"{s} µs ({prof[s]['samples']} samples)" for s in systems)
    out = [
        f"## Where a worker's CPU goes, bff beside the floor (py-spy --gil, {scenario} under wrk, "
        f"{plan['headline_connections']} connections)",
        "",
        "Each system's share of GIL-holding samples times its CPU per request at that load "
        "(the max-throughput row above).",
        "",
        f"| component | {head} |",
        "|---|" + "---|" * len(systems),
    ]
    for name in names:
        cells = [f"{prof[s]['share_pct'].get(name, 0) * cpu_us[s] / 100:.0f}" for s in systems]
        out.append(f"| {name} | {' | '.join(cells)} |")
    out += ["", "| first library call below the app's code (or its own function) | share |"]
    out += ["|---|---|", *(f"| `{k}` | {v} % |" for k, v in prof["bff"]["top_callees_pct"].items())]
    return [*out, ""]


# -- charts


def charts(data: dict[str, Any], img: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    plan = data["plan"]
    scenarios = list(plan["scenarios"])
    upstream = plan["headline_latency"]
    fixed = _rows(data, "fixed_rate")
    fig, axes = plt.subplots(
        len(scenarios), 3, figsize=(13, 3.6 * len(scenarios)), sharey=True, squeeze=False
    )
    for row, scenario in enumerate(scenarios):
        for ax, q in zip(axes[row], QS, strict=True):
            for system in SYSTEMS:
                pts = sorted(
                    (r["rate"], r["latency_ms"][q])
                    for r in fixed
                    if r["system"] == system
                    and r["latency"] == upstream
                    and r["scenario"] == scenario
                )
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=system)
            ax.set_title(f"{scenario}: {q}, IDaaS {upstream} ms")
            ax.set_xlabel("offered rate (req/s)")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        axes[row][0].set_ylabel("latency (ms, log)")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(img / "bench-latency-vs-rate.png", dpi=110)
    plt.close(fig)

    maxima = [
        r for r in _rows(data, "max_throughput") if r["connections"] == plan["headline_connections"]
    ]
    latencies = sorted({r["latency"] for r in maxima}, reverse=True)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4), squeeze=False)
    width = 0.2
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        for i, system in enumerate(SYSTEMS):
            values = [
                next(
                    (
                        r["rps"]
                        for r in maxima
                        if r["system"] == system
                        and r["latency"] == lat
                        and r["scenario"] == scenario
                    ),
                    0,
                )
                for lat in latencies
            ]
            xs = [x + (i - 1.5) * width for x in range(len(latencies))]
            bars = ax.bar(xs, values, width, label=system)
            ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_xticks(range(len(latencies)), [f"IDaaS {lat} ms" for lat in latencies])
        ax.set_ylabel(f"max answered req/s (wrk c={plan['headline_connections']}, log)")
        ax.set_yscale("log")
        ax.set_title(f"{scenario}: maximum throughput")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(img / "bench-throughput-vs-upstream.png", dpi=110)
    plt.close(fig)


# -- the other modes


def sweep_markdown(data: dict[str, Any]) -> str:
    out = _header(data, "gunicorn sweep, bff alone")
    out += [
        f"Upstream latency {data['sweep_latency']} ms; gthread workers; wrk at "
        f"{data['sweep_connections']} connections, then {data['sweep_rate']}/s open loop.",
        "",
        "| workers | threads | max logins/s (wrk) | errors | CPU ms/login "
        "| at the fixed rate: answered/s | p50 | p99 | errors | CPU ms/login | foreign cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows: list[dict[str, Row]] = []
    for r in data["results"]:  # a configuration's max_throughput row starts its group
        if r["kind"] == "max_throughput":
            rows.append({})
        rows[-1][r["kind"]] = r
    for kinds in rows:
        top = kinds["max_throughput"]
        fixed = kinds.get("fixed_rate")
        at_rate = "not run (max below 1.1 × the rate) | | | |"
        foreign = top["foreign_cores"]
        if fixed is not None:
            lat = fixed["latency_ms"]
            foreign = max(foreign, fixed["foreign_cores"])
            at_rate = (
                f"{fixed['achieved_rps']} | {lat['p50']:.1f} | {lat['p99']:.1f} | "
                f"{_errors(fixed)} | {fixed['cpu_ms_per_req']:.2f}"
            )
        out.append(
            f"| {top['workers']} | {top['threads']} | {top['rps']} | {_errors(top)} "
            f"| {top['cpu_ms_per_req']:.2f} | {at_rate} | {foreign} |"
        )
    return "\n".join(out) + "\n"


def _worker_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (upstream, connections, system, worker class) of a --workers run."""
    rows = []
    for top in _rows(data, "max_throughput"):
        key = {k: top[k] for k in ("latency", "system", "worker_class", "worker_n", "scenario")}
        fixed = _find(data, kind="fixed_rate", **key)
        rss = next(
            (
                e["workers_mib"]
                for e in data.get("rss", [])
                if e["system"] == top["system"]
                and e.get("worker_class") == top["worker_class"]
                and e.get("worker_n") == top["worker_n"]
                and e["latency"] == top["latency"]
            ),
            [],
        )
        logs = sum(
            a["lines"]
            for a in data.get("app_logs", [])
            if a["system"] == top["system"]
            and a.get("worker_class") == top["worker_class"]
            and a.get("worker_n") == top["worker_n"]
            and a["latency"] == top["latency"]
        )
        foreign = max(r["foreign_cores"] for r in (top, fixed) if r)
        rows.append(
            {**key, "top": top, "fixed": fixed, "rss": rss, "log_lines": logs, "foreign": foreign}
        )
    return rows


def _faster(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Per (upstream, connections, system): which worker class held more requests/s."""
    out = []
    groups: dict[tuple[int, int, str], dict[str, float]] = {}
    for row in rows:
        key = (row["latency"], row["worker_n"], row["system"])
        groups.setdefault(key, {})[row["worker_class"]] = row["top"]["rps"]
    for (lat, n, system), by_class in groups.items():
        if len(by_class) < 2:
            continue
        best = max(by_class, key=lambda c: by_class[c])
        other = min(by_class, key=lambda c: by_class[c])
        factor = _ratio(by_class[best], by_class[other])
        out.append((f"{lat} ms, {n} connections", system, best, f"{_num(factor)}× {other}"))
    return out


def workers_markdown(data: dict[str, Any]) -> str:
    out = _header(data, "Worker class comparison: gthread against gevent")
    out += [
        f"Scenario: {data['workers_scenario']}; 2 workers each; gthread with `--threads N`, "
        "gevent with `--worker-connections N`, N = the connections in flight (wrk's); both on the "
        "gunicorn command line, after bff's `-c config/gunicorn.conf.py`.",
        "",
        "| upstream | N | system | worker | max req/s (wrk) | errors | CPU ms/req | p50 | p99 "
        "| at 200/s: p50 | p99 | errors | CPU ms/req | RSS per worker MiB | log warnings "
        "| foreign cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in _worker_rows(data):
        top, fixed = row["top"], row["fixed"]
        at_rate = "| | | |"
        if fixed is not None:
            at_rate = (
                f"{fixed['latency_ms']['p50']:.1f} | {fixed['latency_ms']['p99']:.1f} "
                f"| {_errors(fixed)} | {fixed['cpu_ms_per_req']:.2f}"
            )
        out.append(
            f"| {row['latency']} ms | {row['worker_n']} | {row['system']} | {row['worker_class']} "
            f"| {top['rps']} | {_errors(top)} | {top['cpu_ms_per_req']:.2f} "
            f"| {top['latency_ms']['p50']:.1f} | {top['latency_ms']['p99']:.1f} | {at_rate} "
            f"| {', '.join(f'{m:.0f}' for m in row['rss']) or '—'} | {row['log_lines']} "
            f"| {row['foreign']} |"
        )
    out += ["", "| where | system | more req/s | by |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _faster(_worker_rows(data))]
    out += ["", *_answers_md(data), *_logs_md(data)]
    return "\n".join(out) + "\n"


def workers_terminal(data: dict[str, Any]) -> list[str]:
    lines = ["", f"worker classes ({data['workers_scenario']}):"]
    for row in _worker_rows(data):
        top, fixed = row["top"], row["fixed"]
        at_rate = ""
        if fixed is not None:
            lat = fixed["latency_ms"]
            at_rate = f"  200/s p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} ms"
        lines.append(
            f"  {row['latency']:>3} ms N={row['worker_n']:<3} {row['system']:<5} "
            f"{row['worker_class']:<7} {top['rps']:>7}/s errors {_errors(top)} "
            f"cpu {top['cpu_ms_per_req']:.2f} ms{at_rate} log lines {row['log_lines']} "
            f"foreign {row['foreign']}"
        )
    lines += ["", "faster worker class:"]
    lines += [f"  {a} {b}: {c} ({d})" for a, b, c, d in _faster(_worker_rows(data))]
    for a in data.get("app_logs", []):
        if a["lines"]:
            lines.append(f"{a['system']} [{config_name(a)}] at {a['latency']} ms logged:")
            lines += [f"  {n} × {kind[:160]}" for kind, n in a.get("kinds", {}).items()]
    return lines
