"""Processes the tests start themselves: redis-servers on spare loopback ports, simulator commands.

Only the processes started here are stopped, by pid.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis

# `make test` starts redis-servers of its own (and redis-cli joins a cluster): both on PATH.
REDIS_TOOLS = "apt-get install redis-server, which brings redis-cli; .ci/run installs them"


def require_binary(name: str) -> str:
    """The path of ``name``; when it is not on PATH, the calling test is skipped, saying why."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH: this test starts its own ({REDIS_TOOLS})")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_cluster_port() -> int:
    """A free port P with P + 10000 free too: a cluster node's bus listens there (P <= 55535)."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisProcess:
    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="bff-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, binary: str) -> list[str]:
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            *self.extra,
        ]

    def start(self) -> RedisProcess:
        binary = require_binary("redis-server")
        self.proc = subprocess.Popen(
            self.command(binary), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisClusterProcesses:
    """Three masters with --cluster-enabled on spare ports, joined by redis-cli --cluster create;
    ``replicas=1``: a replica for each (six nodes), which takes over when its master dies (after
    the 2 s node timeout and an election: a few seconds)."""

    def __init__(self, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes = [
            RedisProcess(
                free_cluster_port(), "--cluster-enabled", "yes", "--cluster-node-timeout", "2000"
            )
            for _ in range(3 * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url.removesuffix("/0")

    def start(self) -> RedisClusterProcesses:
        try:
            return self._start()
        except BaseException:
            self.close()  # never leave half a cluster running
            raise

    def _start(self) -> RedisClusterProcesses:
        cli = require_binary("redis-cli")
        for node in self.nodes:
            node.extra = (*node.extra, "--cluster-config-file", f"{node.dir}/nodes.conf")
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas)]
            + ["--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        # Every node must say ok, not just the one asked: one that has not caught up answers
        # CLUSTERDOWN, which reached a test as a 503 once under `make test-lowest` (redis-py 5.0).
        deadline = time.monotonic() + 20
        while not all(self._node_ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not become ok")
            time.sleep(0.1)
        while self.replicas and not all(self._replica_synced(n) for n in self.replica_nodes()):
            if time.monotonic() > deadline:
                raise RuntimeError("the replicas did not catch up")
            time.sleep(0.1)
        return self

    def live(self) -> list[RedisProcess]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def roles(self) -> dict[int, str]:
        """Each live node's port and role (``master`` or ``slave``), as the node says."""
        out = {}
        for node in self.live():
            with redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2) as client:
                out[node.port] = str(client.info("replication")["role"])
        return out

    def master_nodes(self) -> list[RedisProcess]:
        roles = self.roles()
        return [n for n in self.live() if roles.get(n.port) == "master"]

    def replica_nodes(self) -> list[RedisProcess]:
        roles = self.roles()
        return [n for n in self.live() if roles.get(n.port) == "slave"]

    @staticmethod
    def _replica_synced(node: RedisProcess) -> bool:
        with redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2) as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def wait_ok(self, timeout: float = 30.0) -> float:
        """Wait until three live nodes are masters (a dead master's replica has taken over) and
        every live node says cluster_state ok; the seconds it took."""
        start = time.monotonic()
        while len(self.master_nodes()) < 3 or not all(self._node_ok(n) for n in self.live()):
            if time.monotonic() - start > timeout:
                raise RuntimeError("the cluster did not become ok again")
            time.sleep(0.1)
        return time.monotonic() - start

    @staticmethod
    def _node_ok(node: RedisProcess) -> bool:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            return bool(client.cluster("info").get("cluster_state") == "ok")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class SentinelProcess(RedisProcess):
    """``redis-server sentinel.conf --sentinel``, monitoring ``master`` (quorum 2) with a short
    ``down-after-milliseconds``: a failover starts about a second after the master dies."""

    def __init__(self, master: RedisProcess, name: str, down_after_ms: int) -> None:
        super().__init__()
        self.conf = f"{self.dir}/sentinel.conf"
        with open(self.conf, "w") as conf:  # sentinel rewrites it: a file of its own
            conf.write(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {name} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                f"sentinel failover-timeout {name} {4 * down_after_ms}\n"
                f"sentinel parallel-syncs {name} 2\n"
            )

    def command(self, binary: str) -> list[str]:
        return [binary, self.conf, "--sentinel"]


class RedisSentinelProcesses:
    """A master, ``replicas`` replicas of it and three sentinels (quorum 2), on spare ports."""

    def __init__(self, name: str = "mymaster", replicas: int = 2, down_after_ms: int = 1000):
        self.name = name
        self.master = RedisProcess()
        self.replicas = [
            RedisProcess(None, "--replicaof", "127.0.0.1", str(self.master.port))
            for _ in range(replicas)
        ]
        self.sentinels = [SentinelProcess(self.master, name, down_after_ms) for _ in range(3)]

    @property
    def addresses(self) -> str:
        """``REDIS_SENTINELS``: every sentinel's host:port."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @property
    def data_nodes(self) -> list[RedisProcess]:
        return [self.master, *self.replicas]

    def start(self) -> RedisSentinelProcesses:
        try:
            for node in [*self.data_nodes, *self.sentinels]:
                node.start()
            self._wait_until_known()
        except BaseException:
            self.close()  # never leave half a set running
            raise
        return self

    def _wait_until_known(self) -> None:
        self.wait_in_sync()

    def wait_in_sync(self) -> None:
        """Every node but the master a replica in sync, every sentinel aware of them all and of
        the other two sentinels."""
        deadline = time.monotonic() + 30
        while not self._known():
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels did not learn the set")
            time.sleep(0.1)

    def _known(self) -> bool:
        master = self.master_port()
        if master is None:
            return False
        for replica in (node for node in self.data_nodes if node.port != master):
            with redis.Redis(port=replica.port, decode_responses=True) as client:
                info = client.info("replication")
                if info.get("master_port") != master or info.get("master_link_status") != "up":
                    return False
        for sentinel in self.sentinels:
            with redis.Redis(port=sentinel.port, decode_responses=True) as client:
                state = client.sentinel_master(self.name)
                if int(state["num-slaves"]) < len(self.replicas):
                    return False
                if int(state["num-other-sentinels"]) < len(self.sentinels) - 1:
                    return False
        return True

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels name it (None: no majority)."""
        ports = []
        for sentinel in self.sentinels:
            try:
                with redis.Redis(port=sentinel.port, socket_timeout=1) as client:
                    ports.append(int(client.sentinel_get_master_addr_by_name(self.name)[1]))
            except (redis.RedisError, TypeError):
                continue
        best = max(set(ports), key=ports.count, default=None)
        return best if best is not None and ports.count(best) >= 2 else None

    def close(self) -> None:
        for node in [*self.sentinels, *self.data_nodes]:
            node.close()


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Stop a simulator started as a command (by its pid) and close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
