"""Object storage: S3 (a local SeaweedFS, `weed mini`) side by side with the local folder.

Measures, per backend: a large ``put_file`` (throughput and how much the process's peak
RSS grows, i.e. whether the upload streams), streaming it back with ``open``, and the
median latency of small ``put``/``get`` calls. Bounded: one file of ``--mb`` MB and
``--small`` small objects. Run from the repository root::

    .venv/bin/python benchmarks/storage_s3.py --mb 256 --small 200
    .venv/bin/python benchmarks/storage_s3.py --quick     # 16 MB, 20 objects
"""

from __future__ import annotations

import hashlib
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _harness import parse, parser, save, table
from _harness.s3 import S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY, running_weed

from pixelmill.backends.storage.base import Storage
from pixelmill.backends.storage.filesystem import FilesystemStorage
from pixelmill.backends.storage.s3 import S3Storage

MB = 1024 * 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(storage: Storage, src: Path, small: int) -> dict[str, float]:
    """put_file/open throughput (MB/s), peak RSS growth (MB), small put/get medians (ms)."""
    storage.put("warm", b"x")
    size_mb = src.stat().st_size / MB
    before = peak_rss_mb()
    t = time.perf_counter()
    storage.put_file("big", src)
    up = time.perf_counter() - t
    grew = peak_rss_mb() - before
    t = time.perf_counter()
    digest = hashlib.sha256()
    with storage.open("big") as fh:
        while chunk := fh.read(MB):
            digest.update(chunk)
    down = time.perf_counter() - t
    puts, gets = [], []
    body = bytes(10 * 1024)
    for i in range(small):
        t = time.perf_counter()
        storage.put(f"small/{i:05d}", body)
        puts.append(time.perf_counter() - t)
        t = time.perf_counter()
        storage.get(f"small/{i:05d}")
        gets.append(time.perf_counter() - t)
    return {
        "put_file_mb_s": size_mb / up,
        "rss_growth_mb": grew,
        "read_mb_s": size_mb / down,
        "put_ms": statistics.median(puts) * 1000,
        "get_ms": statistics.median(gets) * 1000,
    }


def main() -> None:
    p = parser(__doc__, "a 16 MB file and 20 small objects")
    p.add_argument("--mb", type=int, default=256, help="size of the large file (MB)")
    p.add_argument("--small", type=int, default=200, help="number of 10 KB objects")
    args = parse(p, {"mb": 16, "small": 20})
    work = Path(tempfile.mkdtemp(prefix="pm-bench-s3-"))
    results: dict[str, dict[str, float]] = {}
    try:
        with running_weed(work / "weed") as (_pid, endpoint):
            src = work / "big.bin"
            with src.open("wb") as fh:
                for i in range(args.mb):
                    fh.write(hashlib.sha256(str(i).encode()).digest() * (MB // 32))
            s3 = S3Storage(S3_BUCKET, endpoint, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY)
            results["S3 (SeaweedFS 4.48, loopback)"] = run(s3, src, args.small)
            results["local folder"] = run(FilesystemStorage(work / "objects"), src, args.small)
    except RuntimeError as exc:
        sys.exit(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.mb} MB file, {args.small} objects of 10 KB\n")
    header = ["backend", "put_file", "peak RSS growth", "open + read", "put 10 KB", "get 10 KB"]
    rows = [
        [
            name,
            f"{r['put_file_mb_s']:.0f} MB/s",
            f"+{r['rss_growth_mb']:.0f} MB",
            f"{r['read_mb_s']:.0f} MB/s",
            f"{r['put_ms']:.1f} ms",
            f"{r['get_ms']:.1f} ms",
        ]
        for name, r in results.items()
    ]
    print(table(header, rows))
    s3, local = results.values()
    save(
        "storage_s3",
        {"mb": args.mb, "small": args.small, "results": results},
        [
            f"S3 / local folder: put_file {s3['put_file_mb_s'] / local['put_file_mb_s']:.2f}x, "
            f"open + read {s3['read_mb_s'] / local['read_mb_s']:.2f}x "
            f"({args.mb} MB); small put {s3['put_ms']:.1f} vs {local['put_ms']:.1f} ms, "
            f"get {s3['get_ms']:.1f} vs {local['get_ms']:.1f} ms (medians of {args.small})",
        ],
    )


if __name__ == "__main__":
    main()
