"""What an abuse limit is, as values: a rate, the scopes a request is counted under, a counter.

Windows are fixed and aligned to the clock (a 15-minute window starts at :00, :15, ...), so
every worker and instance agrees on which window a hit falls in, and a window's end is known
without asking Redis. Imports nothing of bff.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


class Scope(enum.Enum):
    """Who a request is counted as."""

    OPENID = "openid"
    IP = "ip"
    ACCOUNT = "account"  # the IDaaS account a bind names, as a keyed hash
    DESTINATION = "destination"  # where a verification code goes, as a hash


# Counted per IDaaS tenant, not per app: an account, and where a code goes, are the tenant's,
# whichever mini program names them (apps on one tenant would otherwise multiply the budget).
TENANT_SCOPES = frozenset({Scope.ACCOUNT, Scope.DESTINATION})


@dataclass(frozen=True)
class Rate:
    """``amount`` hits per ``window_s`` seconds (``label``: as the setting wrote it)."""

    amount: int
    window_s: int
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.label or f"{self.amount} per {self.window_s} s"


# What a setting like RATE_LIMIT_BIND holds: the rates of each scope it limits.
Limits = Mapping[Scope, tuple[Rate, ...]]


@dataclass(frozen=True)
class Counter:
    """One rate of one scope of one route, for one identity, in the window ``now`` falls in."""

    route: str
    scope: Scope
    ident: str  # an IP address, an openid, or a hash (accounts, destinations): key-safe
    rate: Rate
    window: int  # the window's number: unix seconds // window_s

    @property
    def ends_at(self) -> int:
        """When the window ends (unix seconds): the counter's expiry."""
        return (self.window + 1) * self.rate.window_s

    @property
    def tenant_wide(self) -> bool:
        """Whether every app on the IDaaS tenant shares this counter."""
        return self.scope in TENANT_SCOPES

    @property
    def name(self) -> str:
        """The counter's part of its Redis key (the store adds the prefix)."""
        rate = f"{self.rate.amount}/{self.rate.window_s}s"
        return f"{self.route}:{self.scope.value}:{self.ident}:{rate}:{self.window}"

    def seconds_left(self, now: float) -> int:
        return max(1, math.ceil(self.ends_at - now))


def counters(route: str, limits: Limits, who: Mapping[Scope, str], now: float) -> list[Counter]:
    """Every counter a request of ``route`` by ``who`` counts against at ``now``."""
    return [
        Counter(route, scope, ident, rate, int(now // rate.window_s))
        for scope, ident in who.items()
        for rate in limits.get(scope, ())
    ]


@dataclass(frozen=True)
class Hits:
    """The counters one request is charged, and what their counts mean.

    Counted by the Redis round trip that carries it (``SessionStore.lock`` or
    ``SessionStore.count``), which hands the counts (None: counting failed) to ``judge``.
    """

    counters: tuple[Counter, ...]
    judge: Callable[[Sequence[int] | None], None]
