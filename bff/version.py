"""The one source of bff's version: setup.cfg reads it (``attr:``), the app reports it (the
start-up line, every log line, ``/healthz``, ``bff_build_info``)."""

import os

__version__ = "0.1.0"


def build_commit() -> str:
    """The commit the running code was built from: ``BFF_COMMIT`` (the image sets it from its
    build argument), else ``unknown``."""
    commit = os.environ.get("BFF_COMMIT", "").strip()
    return commit[:40] if commit.isalnum() else "unknown"
