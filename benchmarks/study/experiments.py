"""The load study's experiments, one command each (``make study`` runs all, quick)::

    python -m benchmarks.study.experiments a b c d e f [--quick] [--seconds S] [--hit-ratio H]

a. throughput vs concurrency, b. latency percentiles vs offered load, c. recovery after
kill -9, d. scalability (workers, gateways) with a USL fit and the cost model, e. monolith
vs microservices, f. model inference vs raw ONNX Runtime. Each writes CSV + plot under docs/load-study/ and its section of
docs/load-study.md. Everything on 127.0.0.1; every process started is stopped by PID.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks._harness.procs import stopping_on_signals
from benchmarks.study.common import RUN


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="*", default=["a", "b", "c", "d", "e", "f"])
    parser.add_argument("--quick", action="store_true", help="short steps (make study)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per load step")
    parser.add_argument("--hit-ratio", type=float, default=0.0, help="render cache-hit share")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 3.0)
    from benchmarks.study import inference, load, recovery, scaling

    runs = {
        "a": load.exp_a,
        "b": load.exp_b,
        "c": recovery.exp_c,
        "d": scaling.exp_d,
        "e": load.exp_e,
        "f": inference.exp_f,
    }
    RUN.mkdir(parents=True, exist_ok=True)
    with stopping_on_signals():
        for key in args.which:
            t0 = time.monotonic()
            runs[key](args)
            print(f"experiment {key}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
