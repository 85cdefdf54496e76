"""The load balancer of ``pixelmill cluster up``: HAProxy's config for gateway processes
on this machine, made from the one in ``deploy/compose.yaml`` (its ``haproxy`` config).

One source of truth: timeouts, retries (``retry-on`` + ``option redispatch``, L7 retries
only for GET/HEAD), the health check on ``/readyz``, ``leastconn`` and the frontend rules
are the compose file's, verbatim. Only what is about Docker changes: the DNS resolver
section goes, ``server-template NAME N host:port`` becomes one ``server`` line per local
gateway port, and ``bind :PORT`` binds loopback. Added for an operator on this machine:
the ``X-Request-ID`` of each request in HAProxy's log, an ``X-Backend`` response header
naming the server that answered, and a stats page on its own loopback port.

Standard library and PyYAML only: no platform imports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

__all__ = ["compose_haproxy_config", "find_deploy_dir", "local_config"]

_TEMPLATE = re.compile(r"^(\s*)server-template\s+(\S+)\s+\d+\s+\S+\s*$")
_BIND = re.compile(r"^(\s*)bind\s+\S*:\d+\s*$")
_DOCKER_ONLY = re.compile(r"\s+(resolvers|init-addr)\s+\S+")


def find_deploy_dir(start: Path | None = None) -> Path | None:
    """The folder holding ``compose.yaml``: ``$PIXELMILL_DEPLOY_DIR``, else ``deploy/`` in
    the current folder or one above it, else beside this source checkout."""
    named = os.environ.get("PIXELMILL_DEPLOY_DIR")
    if named:
        return Path(named)
    here = (start or Path.cwd()).resolve()
    checkout = Path(__file__).resolve().parents[3]
    for folder in (here, *here.parents, checkout):
        if (folder / "deploy" / "compose.yaml").is_file():
            return folder / "deploy"
    return None


def compose_haproxy_config(deploy_dir: Path) -> str:
    """The HAProxy config text of ``deploy_dir/compose.yaml`` (``configs.haproxy``)."""
    compose = yaml.safe_load((deploy_dir / "compose.yaml").read_text())
    return str(compose["configs"]["haproxy"]["content"])


def local_config(
    compose_config: str,
    *,
    port: int,
    gateway_ports: Sequence[int],
    stats_port: int,
    host: str = "127.0.0.1",
) -> str:
    """``compose_config`` for ``gateway_ports`` on ``host``, served on ``host:port``."""
    out: list[str] = []
    section = ""
    for line in compose_config.splitlines():
        if line and not line[0].isspace():
            section = line.split()[0]
        if section == "resolvers":
            continue
        if (bind := _BIND.match(line)) is not None:
            indent = bind.group(1)
            out += [
                f"{indent}bind {host}:{port}",
                f"{indent}capture request header X-Request-ID len 64",
            ]
            continue
        if (template := _TEMPLATE.match(line)) is not None:
            indent, name = template.groups()
            out.append(f"{indent}http-response set-header X-Backend %s")
            out += [
                f"{indent}server {name}{i} {host}:{gw}" for i, gw in enumerate(gateway_ports, 1)
            ]
            continue
        out.append(_DOCKER_ONLY.sub("", line))
    out += [
        "listen stats",
        f"  bind {host}:{stats_port}",
        "  mode http",
        "  stats enable",
        "  stats uri /stats",
        "",
    ]
    return "\n".join(out)
