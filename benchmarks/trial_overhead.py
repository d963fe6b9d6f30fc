"""Per-trial overhead: N tiny trials through rnnsweep vs the same trials in a plain loop.

Both sides do the same training and write the same metric logs; rnnsweep adds Ray
scheduling, worker hand-off, the DuckDB loads and run bookkeeping. With `--cpus 1` both run
one trial at a time, so (rnnsweep --no-pack - loop) / N is the overhead per trial. A third
row runs the same trials the default way, in packs (fused, see benchmarks/packs.py). Ray's start-up is
timed apart: it is paid once per `rnnsweep submit`, not per trial. Median of `--repeats`.

    python benchmarks/trial_overhead.py                 # 32 trials, 1 CPU, 3 repeats
    python benchmarks/trial_overhead.py --trials 64 --cpus 2
    python benchmarks/trial_overhead.py --smoke-test    # seconds; proves the script runs
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from rnnsweep.jobs.config import DataConfig, ModelConfig, OptimizerConfig, TrainingConfig, TrialConfig
from rnnsweep.jobs.entry import run_unit
from rnnsweep.service.spec import Grid
from rnnsweep.service.submit import run_sweep


def tiny_trials(n: int, epochs: int, sweep: str) -> list[TrialConfig]:
    """n distinct tiny event-detection trials (they differ in lr)."""
    return [
        TrialConfig(
            sweep=sweep,
            task="events",
            seed=0,
            epochs=epochs,
            data=DataConfig(n_train=256, n_val=64, seq_len=20, n_features=2, positive_rate=0.1),
            model=ModelConfig(cell="gru", hidden=16),
            optimizer=OptimizerConfig(lr=1e-3 * (1 + i / n)),
            training=TrainingConfig(batch_size=64),
        )
        for i in range(n)
    ]


def plain_loop(trials: list[TrialConfig], storage: str) -> float:
    began = time.perf_counter()
    for trial in trials:
        run_unit([trial], storage)
    return time.perf_counter() - began


def through_rnnsweep(trials: list[TrialConfig], workdir: Path, pack: bool = False) -> float:
    grid = Grid(trials[0].sweep, workdir / "grid.toml", "", {"optimizer.lr": []}, trials)
    began = time.perf_counter()
    run_sweep(grid, workdir / "wh.duckdb", str(workdir / "logs"), show_progress=False, pack=pack)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=1, help="local Ray CPUs (1 = sequential, like the loop)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke-test", action="store_true", help="4 trials, 1 repeat")
    args = parser.parse_args()
    if args.smoke_test:
        args.trials, args.repeats = 4, 1

    import ray

    ray_start = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    ray_start = time.perf_counter() - ray_start
    try:
        # Warm-up: the loop's process and Ray's workers both import torch once, untimed.
        with tempfile.TemporaryDirectory() as tmp:
            plain_loop(tiny_trials(1, 1, "warmup"), tmp)
            through_rnnsweep(tiny_trials(args.cpus, 1, "warmup"), Path(tmp))
        loops, sweeps, packed = [], [], []
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                loops.append(plain_loop(tiny_trials(args.trials, args.epochs, f"loop{repeat}"), tmp))
            with tempfile.TemporaryDirectory() as tmp:
                sweeps.append(through_rnnsweep(tiny_trials(args.trials, args.epochs, f"sweep{repeat}"), Path(tmp)))
            with tempfile.TemporaryDirectory() as tmp:
                trials = tiny_trials(args.trials, args.epochs, f"packed{repeat}")
                packed.append(through_rnnsweep(trials, Path(tmp), pack=True))
    finally:
        ray.shutdown()

    loop, sweep, pack = statistics.median(loops), statistics.median(sweeps), statistics.median(packed)
    n = args.trials
    print(
        f"{n} tiny trials ({args.epochs} epochs, GRU 16, 256 sequences), local Ray with {args.cpus} CPU(s), median of {args.repeats}"
    )
    print(f"| {'way':<36} | {'wall s':>8} | {'per trial ms':>12} |")
    print(f"|{'-' * 38}|{'-' * 10}|{'-' * 14}|")
    print(f"| {'plain loop (one process)':<36} | {loop:>8.2f} | {1000 * loop / n:>12.1f} |")
    print(f"| {'rnnsweep --no-pack (Ray + DuckDB)':<36} | {sweep:>8.2f} | {1000 * sweep / n:>12.1f} |")
    print(f"| {'rnnsweep, packs (the default)':<36} | {pack:>8.2f} | {1000 * pack / n:>12.1f} |")
    if args.cpus == 1:  # both sequential: the difference is what rnnsweep adds
        print(f"| {'overhead per trial (rnnsweep - loop)':<36} | {'':>8} | {1000 * (sweep - loop) / n:>12.1f} |")
    else:  # trials run side by side: the ratio is the speed-up over one process
        print(f"| {'speed-up over the loop':<36} | {loop / sweep:>7.2f}x | {'':>12} |")
    print(f"| {'ray.init, once per submit':<36} | {ray_start:>8.2f} | {'':>12} |")
    print(
        f"all repeats: loop {[round(x, 2) for x in loops]}, --no-pack {[round(x, 2) for x in sweeps]}, "
        f"packs {[round(x, 2) for x in packed]}"
    )


if __name__ == "__main__":
    main()
