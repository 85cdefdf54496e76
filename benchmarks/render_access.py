"""What deciding who may render costs on the hot path: a cached render asked for by its
owner (API key: credential check, ownership check) against the same render asked for
anonymously where the server opts in to public renders (no credential, no ownership).

    .venv/bin/python benchmarks/render_access.py            # 2000 requests a side
    .venv/bin/python benchmarks/render_access.py --quick    # 300

In-process (FastAPI TestClient, no network), one 1600 x 1200 PNG, one render URL already in
the result cache (both sides answer ``X-Cache: HIT``: the same bytes, no rendering), rate
limits off, the key check cached as in production (``security.key_cache_s``). Rounds of
100 requests alternate between the sides; medians of this process's CPU ms per request.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _harness import median, parse, parser, save, small_png


def main() -> int:
    p = parser(__doc__, "300 requests a side")
    p.add_argument("--requests", type=int, default=2000)
    args = parse(p, {"requests": 300})
    from fastapi.testclient import TestClient

    from pixelmill.runtime.container import build_container
    from pixelmill.services.gateway.app import create_app
    from pixelmill.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            security={"public_read": True},  # type: ignore[arg-type]
            ratelimit={"enabled": False},  # type: ignore[arg-type]
        )
        container = build_container(settings)
        user = container.users.create("owner")
        _, key = container.keys.create("bench", "write", user_id=user.id)
        auth = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(container)) as client:
            image = client.post("/v1/images", content=small_png(1600, 1200), headers=auth)
            url = f"/v1/images/{image.json()['id']}/render?w=300&format=jpeg"
            sides = {"owner (key)": auth, "anonymous (opt-in)": {}}
            for headers in sides.values():  # warm: the result cache holds the render
                assert client.get(url, headers=headers).status_code == 200
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            rounds = max(1, args.requests // 100)
            for _ in range(rounds):
                for name, headers in sides.items():
                    started = time.process_time()
                    for _ in range(100):
                        resp = client.get(url, headers=headers)
                        assert resp.headers["x-cache"] == "HIT", resp.text
                    cpu[name].append((time.process_time() - started) * 10)  # ms a request
        container.close()
    owner, anon = median(cpu["owner (key)"]), median(cpu["anonymous (opt-in)"])
    line = (
        f"cached render: owner with a key {owner:.3f} ms CPU vs anonymous {anon:.3f} ms "
        f"({owner / anon:.2f}x)"
    )
    print(line)
    save("render_access", {"cpu_ms": cpu, "args": vars(args)}, [line])
    return 0


if __name__ == "__main__":
    sys.exit(main())
