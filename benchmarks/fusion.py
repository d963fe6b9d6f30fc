"""Fusion alone: P trials of one shape as one fused model vs the same P trials one after another.

No Ray, no DuckDB: one process, one thread, the real training loop (rnnsweep.jobs.loop.train:
each trial alone on its module engine, the pack on the fused engine) writing to a log that drops
rows, so the table shows what fusing buys per pack size, the curve service/packing.py sizes
packs by. Median of --repeats; the trials differ in lr and seed.

    python benchmarks/fusion.py                       # bidirectional GRU 32, seq 40, P = 1..32
    python benchmarks/fusion.py --cell lstm --hidden 64 --sizes 1 4 16
    python benchmarks/fusion.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnsweep.jobs.config import DataConfig, ModelConfig, OptimizerConfig, TrialConfig
from rnnsweep.jobs.loop import train


class DroppedLog:
    """MetricLog's interface, keeping nothing: the table times training, not writing."""

    chunks_written = 0

    def add(self, step, epoch, metrics) -> None:
        pass

    def flush(self) -> None:
        pass


def trials(n: int, args: argparse.Namespace) -> list[TrialConfig]:
    return [
        TrialConfig(
            sweep="fusion",
            task="events",
            seed=i,
            epochs=1,
            data=DataConfig(n_train=args.n_train, n_val=512, seq_len=args.seq_len),
            model=ModelConfig(cell=args.cell, hidden=args.hidden, bidirectional=True),
            optimizer=OptimizerConfig(lr=10 ** (-4 + 3 * i / max(n, 1))),
        )
        for i in range(n)
    ]


def timed(run) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", default="gru", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=40)
    parser.add_argument("--n-train", type=int, default=2048)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, P = 1 and 4, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.sizes, args.repeats = 256, [1, 4], 1
    torch.set_num_threads(1)

    alone = statistics.median(timed(lambda: train(trials(1, args), [DroppedLog()])) for _ in range(args.repeats))
    print(
        f"{args.cell.upper()} {args.hidden} bidirectional, seq_len {args.seq_len}, {args.n_train} sequences, "
        f"batch 64, 1 epoch; 1 thread, torch {torch.__version__}; median of {args.repeats}"
    )
    print(f"one trial alone: {alone:.2f} s")
    print(f"| {'pack size':>9} | {'P alone, s':>10} | {'packed, s':>9} | {'speed-up':>8} | {'trials/hour':>11} |")
    print(f"|{'-' * 11}|{'-' * 12}|{'-' * 11}|{'-' * 10}|{'-' * 13}|")
    for size in args.sizes:
        members = trials(size, args)
        packed = statistics.median(
            timed(lambda m=members: train(m, [DroppedLog() for _ in m])) for _ in range(args.repeats)
        )
        sequential = alone * size
        print(
            f"| {size:>9} | {sequential:>10.2f} | {packed:>9.2f} | {sequential / packed:>7.2f}x | "
            f"{3600 * size / packed:>11,.0f} |"
        )


if __name__ == "__main__":
    main()
