"""The harness itself: what `make test` needs beyond Python is named when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import RedisClusterProcesses, RedisProcess


def test_without_redis_server_the_tests_that_start_one_skip_saying_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    proc = RedisProcess()
    with pytest.raises(pytest.skip.Exception, match=r"^redis-server is not on PATH.*apt-get"):
        proc.start()
    proc.close()


def test_without_redis_cli_the_cluster_test_skips_saying_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    nodes = RedisClusterProcesses()
    with pytest.raises(pytest.skip.Exception, match=r"^redis-cli is not on PATH"):
        nodes.start()
    assert all(node.proc is None and not Path(node.dir).exists() for node in nodes.nodes)
