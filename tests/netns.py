"""Many "hosts" on one machine for the end-to-end tests: Linux network namespaces, one
veth pair each into a bridge in the root namespace, ``tc netem`` delay between them.

The machine's servers (RabbitMQ, PostgreSQL, Redis, SeaweedFS) listen on 127.0.0.1 of
the root namespace, which another namespace cannot reach: :class:`Forwarder` relays TCP
from the bridge's address (the "server host" the others see) to them. Every name starts
with a prefix of its own (``pmh`` + a run id), and :func:`remove_stale` deletes what an
earlier run that died left behind. Needs root (``ip``, ``tc``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

PREFIX = "pmh"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    probe = f"{PREFIX}probe{uuid.uuid4().hex[:6]}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def remove_stale() -> None:
    """Delete namespaces and links with our prefix (left by a run that was killed)."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            ip("link", "del", name, check=False)


@dataclass
class Network:
    """A bridge (``server`` address: the root namespace) and hosts attached to it."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    subnet: int = field(default_factory=lambda: random.randint(1, 254))
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address
    netem: bool = True  # False: this kernel has no netem, the links have no delay

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.run}br"

    @property
    def server(self) -> str:
        return f"10.231.{self.subnet}.1"

    def ns(self, host: str) -> str:
        return f"{PREFIX}{self.run}-{host}"

    def up(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.server}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, host: str, *, delay_ms: int = 2) -> str:
        """A namespace ``host`` with an address on the bridge and ``delay_ms`` each way."""
        ns, address = self.ns(host), f"10.231.{self.subnet}.{10 + len(self.hosts)}"
        self.hosts[host] = address  # from now on down() removes it, whatever fails next
        ip("netns", "add", ns)
        ip("link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", ns, "master", self.bridge, "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "default", "via", self.server)
        if delay_ms:
            tc = ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", f"{delay_ms}ms"]
            # a kernel without sch_netem (some VMs) says "qdisc kind is unknown": no delay
            if ip("netns", "exec", ns, *tc, check=False).returncode != 0:
                self.netem = False
        return address

    def partition(self, host: str) -> None:
        """Cut ``host`` off: its link goes down, nothing reaches it or leaves it."""
        ip("-n", self.ns(host), "link", "set", "eth0", "down")

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host`` (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def down(self) -> None:
        for host in self.hosts:
            # the root end of the pair first: a namespace lives on while sockets of its
            # killed processes linger, and its veth pair with it
            ip("link", "del", self.ns(host), check=False)
            ip("netns", "del", self.ns(host), check=False)
        ip("link", "del", self.bridge, check=False)


@contextlib.contextmanager
def network() -> Iterator[Network]:
    """A :class:`Network`, removed whatever happens (stale ones of ours first)."""
    remove_stale()
    net = Network()
    try:
        net.up()
        yield net
    finally:
        net.down()


class Forwarder:
    """Relays TCP from ``host:port`` to ``127.0.0.1:port`` for each port (an asyncio loop
    in a thread of this process), so namespaces reach the machine's servers."""

    def __init__(self, host: str, ports: Sequence[int]) -> None:
        self.host, self.ports = host, list(ports)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self._run, name="pm-forwarder", daemon=True)

    def __enter__(self) -> Forwarder:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            for port in self.ports:
                self._servers.append(
                    self.loop.run_until_complete(
                        asyncio.start_server(self._relay(port), self.host, port, reuse_address=True)
                    )
                )
        except OSError as exc:
            self._error = exc
        self._ready.set()
        if self._error is None:
            self.loop.run_forever()

    @staticmethod
    def _relay(port: int):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                for end in (writer, up_writer):
                    end.close()

        return handle


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()
