"""Figures the security suite reports in the terminal summary (and docs/security.md quotes)."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()
