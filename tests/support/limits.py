"""Rate-limit windows are aligned to the clock: a test that counts within one window starts
clear of the next boundary, so that no reset falls in the middle of it."""

from __future__ import annotations

import time

# Every window bff uses (a minute, 15 minutes, an hour, a day) ends on a minute boundary.
MINUTE_S = 60


def clear_of_a_window_end(margin_s: float) -> None:
    """Return once at least ``margin_s`` seconds are left before the next minute boundary
    (sleeping past it when fewer are)."""
    left = MINUTE_S - time.time() % MINUTE_S
    if left < margin_s:
        time.sleep(left + 0.05)
