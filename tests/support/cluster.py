"""The production topology on test-made hosts (``tests.support.netns``): a private PostgreSQL
cluster, Redis, exchange nodes and HAProxy, each in its own network namespace, all real processes.

Address plan on ``10.254.1.0/24`` (:data:`ADDRESSES`; every host also has ``fd00:254:1::<n>``)::

    db .2  (PostgreSQL 5432)     redis .3 (6379)      lb .10 (HAProxy :8888 → nodes; IPv4 and IPv6)
    node-a .11, node-b .12 (exchange :8888)             hospital .100 (the SDK's machine)

* **PostgreSQL**: ``initdb`` + ``postgres`` from the machine's server binaries
  (``/usr/lib/postgresql/<v>/bin``) run as the ``postgres`` user inside the ``db`` host, listening
  on the db address (trust for the test subnet) and on a Unix socket in its directory. The nodes
  reach it over the network; the test process reaches it through the socket
  (:attr:`Postgres.local_url`), which needs no namespace. ``fsync=off``: PostgreSQL is never the
  process killed here, and it keeps start-up and writes cheap.
* **Redis**: a private ``redis-server`` in the ``redis`` host, no persistence.
* **Exchange nodes**: ``imsp`` :data:`NODE_COMMAND` configured by environment only (``IMSP_HOST``,
  ``IMSP_EXCHANGE__PORT``, ``IMSP_DATABASE_URL``, ``IMSP_REDIS_URL``, ``IMSP_TRUSTED_PROXIES`` = the
  load balancer), so the command is the one thing that changes with the roles. The schema is
  migrated once before the nodes start, as an operator runs ``imsp db upgrade`` before a rollout.
* **HAProxy** in the ``lb`` host: round robin over the nodes, health checks on
  :data:`HEALTH_PATH` every 200 ms, ``X-Forwarded-For`` added (the nodes trust the lb's address),
  a connection refused by a dead node redispatched to another; its stats socket (a file,
  reachable from the test) tells which servers are up and how many requests each served.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import httpx

from imsp.config import Settings
from imsp.storage import migrate
from tests.support.netns import Host, Network, Process

#: The per-role command ``imsp serve exchange --workers N`` and its ``/readyz`` (database and
#: Redis reachable, migrations at head) come with ``imsp.readiness``; before that a node is the
#: all-in-one ``imsp serve`` checked on ``/healthz``. These three lines are the whole switch.
ROLES = find_spec("imsp.readiness") is not None
NODE_COMMAND: tuple[str, ...] = ("serve", "exchange", "--workers", "2") if ROLES else ("serve",)
HEALTH_PATH = "/readyz" if ROLES else "/healthz"
IMSP = (sys.executable, "-m", "imsp.cli.main")

SUBNET = "10.254.1"
ADDRESSES = {"db": 2, "redis": 3, "lb": 10, "node-a": 11, "node-b": 12, "hospital": 100}
EXCHANGE_PORT = 8888
PORTAL_PORT = 8091
PG_PORT = 5432
REDIS_PORT = 6379


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def missing_programs() -> list[str]:
    """The Debian packages the topology needs that are not installed
    (``scripts/install-system-deps.sh --dev`` installs them)."""
    missing = []
    if shutil.which("haproxy") is None:
        missing.append("haproxy")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if shutil.which("setpriv") is None:
        missing.append("util-linux (setpriv)")
    if pg_bindir() is None:
        missing.append("postgresql (server binaries)")
    return missing


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian: ``/usr/lib/postgresql/<v>/bin``)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else None


PG_DIR_PREFIX = "imsp-netns-pg-"


def sweep_stale_dirs() -> None:
    """Remove the database directories of test runs whose process is gone (killed before
    they could clean up)."""
    for path in Path(tempfile.gettempdir()).glob(f"{PG_DIR_PREFIX}*"):
        pid = path.name[len(PG_DIR_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ``IMSP_`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env | dict(extra)


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """A private PostgreSQL cluster in ``host``; database ``imsp`` created empty."""

    def __init__(self, host: Host, logs: Path, user: str = "postgres") -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin)")
        self.host, self.bindir, self.user = host, bindir, user
        # Under /tmp, not pytest's root-only tmp_path: the postgres user must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix=f"{PG_DIR_PREFIX}{os.getpid()}-"))
        shutil.chown(self.dir, user, user)
        self.data = self.dir / "data"
        self.log = logs / "postgres.log"
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        """The nodes' URL: over the network, to the db host's address."""
        return f"postgresql://{self.user}@{self.host.address}:{PG_PORT}/imsp"

    @property
    def local_url(self) -> str:
        """The test's URL: the Unix socket in the cluster's directory (no namespace needed)."""
        return f"postgresql://{self.user}@/imsp?host={self.dir}&port={PG_PORT}"

    def start(self) -> None:
        initdb = subprocess.run(
            [
                "setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups", "--",
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C",
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stdout}{initdb.stderr}")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        self.proc = self.host.spawn(
            [
                str(self.bindir / "postgres"), "-D", str(self.data),
                "-c", f"listen_addresses={self.host.address}", "-c", f"port={PG_PORT}",
                "-c", f"unix_socket_directories={self.dir}",
                "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "shared_buffers=32MB", "-c", "max_connections=100",
            ],
            log=self.log, user=self.user,
        )  # fmt: skip
        wait_for(self._accepts, 60, f"PostgreSQL ({self.log})")
        import psycopg

        with psycopg.connect(
            host=str(self.dir), port=PG_PORT, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE imsp")

    def _accepts(self) -> bool:
        assert self.proc is not None
        if not self.proc.alive():
            raise RuntimeError(f"postgres exited:\n{self.proc.output()}")
        import psycopg

        try:
            psycopg.connect(
                host=str(self.dir), port=PG_PORT, user=self.user, dbname="postgres",
                connect_timeout=2,
            ).close()  # fmt: skip
        except psycopg.OperationalError:
            return False
        return True

    def close(self) -> None:
        if self.proc is not None:
            self.proc.signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- Redis


class Redis:
    """A private ``redis-server`` in ``host``, no persistence; also on a Unix socket."""

    def __init__(self, host: Host, logs: Path) -> None:
        self.host = host
        self.socket = logs / "redis.sock"
        self.log = logs / "redis.log"
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host.address}:{REDIS_PORT}/0"

    def start(self) -> None:
        self.proc = self.host.spawn(
            [
                "redis-server", "--bind", self.host.address, "--port", str(REDIS_PORT),
                "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--daemonize", "no", "--loglevel", "warning",
            ],
            log=self.log,
        )  # fmt: skip
        wait_for(lambda: self.command("PING") == b"+PONG", 20, f"Redis ({self.log})")

    def command(self, *words: str) -> bytes:
        """One inline command over the Unix socket; the first line of the answer (``b""`` when
        Redis is not up yet)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(" ".join(words).encode() + b"\r\n")
                return s.recv(65536).split(b"\r\n", 1)[0]
        except OSError:
            return b""


# --------------------------------------------------------------------------- exchange nodes


class ExchangeNode:
    """One exchange server host; ``env`` is its whole configuration."""

    def __init__(self, host: Host, env: Mapping[str, str], logs: Path) -> None:
        self.host = host
        self.env = dict(env)
        self.log = logs / f"{host.role}.log"
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{EXCHANGE_PORT}"

    def start(self) -> None:
        self.proc = self.host.spawn([*IMSP, *NODE_COMMAND], env=self.env, log=self.log)

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(self._healthy, timeout, f"{self.host.role} ({self.log})", poll=0.1)

    def _healthy(self) -> bool:
        if self.proc is None or not self.proc.alive():
            raise RuntimeError(f"{self.host.role} exited:\n{self.proc and self.proc.output()}")

        def probe() -> bool:
            try:
                with httpx.Client(trust_env=False, timeout=1) as c:
                    return c.get(self.url + HEALTH_PATH).status_code == 200
            except httpx.TransportError:
                return False

        return self.host.call(probe)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def freeze(self) -> None:
        """``SIGSTOP`` every process of the node: connections are still accepted (by the
        kernel) and requests sent to it wait, unanswered, until it is thawed or killed."""
        self.host.signal_all(signal.SIGSTOP)

    def crash(self) -> None:
        """``kill -9`` of every process of the node, mid-whatever it is doing."""
        self.host.crash()
        self.proc = None

    def imsp(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """An ``imsp`` command run on this node's host with the node's configuration (as an
        operator logged in to that machine would)."""
        return self.host.run([*IMSP, *args], env=self.env, timeout=timeout)


# --------------------------------------------------------------------------- HAProxy

HAPROXY_CONFIG = """\
global
    maxconn 1024
    stats socket {stats} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    retries 2
    option redispatch

frontend exchange
    bind {address}:{port}
    bind [{address6}]:{port}
    option forwardfor
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET {health}
    http-check expect status 200
    default-server inter 200ms fastinter 100ms downinter 200ms fall 2 rise 2
{servers}
"""


class HAProxy:
    """HAProxy in ``host`` in front of ``nodes`` (server names = the nodes' host roles)."""

    def __init__(self, host: Host, nodes: Mapping[str, ExchangeNode], logs: Path) -> None:
        self.host = host
        self.nodes = dict(nodes)
        self.stats_socket = logs / "haproxy.sock"
        self.config = logs / "haproxy.cfg"
        self.log = logs / "haproxy.log"
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{EXCHANGE_PORT}"

    @property
    def url6(self) -> str:
        """The load balancer's IPv6 address (the nodes listen on IPv4 only; HAProxy forwards
        the client's IPv6 address in ``X-Forwarded-For``)."""
        return f"http://[{self.host.address6}]:{EXCHANGE_PORT}"

    def start(self) -> None:
        servers = "\n".join(
            f"    server {name} {node.host.address}:{EXCHANGE_PORT} check"
            for name, node in self.nodes.items()
        )
        self.config.write_text(
            HAPROXY_CONFIG.format(
                stats=self.stats_socket,
                address=self.host.address,
                address6=self.host.address6,
                port=EXCHANGE_PORT,
                servers=servers,
                health=HEALTH_PATH,
            )
        )
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(self.config)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy config: {check.stdout}{check.stderr}")
        self.proc = self.host.spawn(["haproxy", "-f", str(self.config), "-db"], log=self.log)
        wait_for(lambda: bool(self.servers()), 20, f"HAProxy ({self.log})")

    def stats(self) -> list[dict[str, str]]:
        """``show stat`` rows (frontend, backend and servers) as dicts; ``[]`` while it starts."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.stats_socket))
                s.sendall(b"show stat\n")
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return []
        text = b"".join(chunks).decode().lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers(self) -> dict[str, dict[str, str]]:
        """The backend's servers: name → stats row (``status`` UP/DOWN, ``scur`` current
        sessions, ``stot`` sessions served, ``hrsp_5xx`` …)."""
        return {
            row["svname"]: row
            for row in self.stats()
            if row.get("pxname") == "nodes" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def frontend(self) -> dict[str, str]:
        """The frontend's stats row (``req_tot`` requests received, ``hrsp_2xx`` … answers)."""
        return next(row for row in self.stats() if row.get("svname") == "FRONTEND")

    def status(self, name: str) -> str:
        return self.servers().get(name, {}).get("status", "")

    def wait_status(self, name: str, status: str, timeout: float = 30) -> None:
        wait_for(lambda: self.status(name).startswith(status), timeout, f"HAProxy: {name} {status}")


# --------------------------------------------------------------------------- the whole topology


@dataclass
class Cluster:
    network: Network
    db: Postgres
    redis: Redis
    nodes: dict[str, ExchangeNode]
    lb: HAProxy
    hospital: Host
    logs: Path
    #: Settings for the test process itself (the database through its Unix socket).
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(database_url=self.db.local_url, data_dir=self.logs / "test-var")

    def restart(self, name: str) -> None:
        """Start node ``name`` again if it is not running, and wait until HAProxy sends to it."""
        node = self.nodes[name]
        if not node.alive():
            node.start()
        node.wait_ready()
        self.lb.wait_status(name, "UP")

    def logs_tail(self) -> str:
        """The tail of every process's log, for a failing assertion's message."""
        parts = []
        for host in self.network.hosts.values():
            for proc in host.processes:
                parts.append(f"--- {host.role}: {proc.log.name}\n{proc.output(1500)}")
        return "\n".join(parts)


def node_env(
    db: Postgres, redis: Redis, lb_address: str, host: Host, data: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """The whole configuration of one exchange node, as environment variables."""
    return base_env(
        {
            "IMSP_DATABASE_URL": db.url,
            "IMSP_REDIS_URL": redis.url,
            "IMSP_DATA_DIR": str(data),
            "IMSP_HOST": host.address,
            "IMSP_EXCHANGE__PORT": str(EXCHANGE_PORT),
            "IMSP_PORTAL__PORT": str(PORTAL_PORT),
            "IMSP_TRUSTED_PROXIES": lb_address,
            # Rules are not what this topology tests; the worker would only add load.
            "IMSP_SUPERVISION__WORKER": "false",
        }
        | dict(extra)
    )


@contextmanager
def production_cluster(
    logs: Path, node_settings: Mapping[str, str] | None = None
) -> Iterator[Cluster]:
    """Build the whole topology (10–40 s, mostly the nodes starting), yield it, tear everything down — processes,
    namespaces, the database directory — also when the block fails. ``node_settings`` are extra
    ``IMSP_…`` variables for both exchange nodes."""
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        net = stack.enter_context(Network(SUBNET))  # sweeps stale namespaces first …
        sweep_stale_dirs()  # … then the directories their databases ran in
        hosts = {role: net.host(role, octet) for role, octet in ADDRESSES.items()}
        db = Postgres(hosts["db"], logs)
        stack.callback(db.close)  # LIFO: runs before the network is torn down
        db.start()
        redis = Redis(hosts["redis"], logs)
        redis.start()
        migrate.upgrade(Settings(database_url=db.local_url, data_dir=logs / "test-var"))
        nodes = {
            name: ExchangeNode(
                hosts[name],
                node_env(
                    db, redis, hosts["lb"].address, hosts[name], logs / name, node_settings or {}
                ),
                logs,
            )
            for name in ("node-a", "node-b")
        }
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            node.wait_ready()
        lb = HAProxy(hosts["lb"], nodes, logs)
        lb.start()
        for name in nodes:
            lb.wait_status(name, "UP")
        yield Cluster(net, db, redis, nodes, lb, hosts["hospital"], logs)
