"""The quickstart grid (examples/quickstart.toml, 18 trials) four ways, on one machine, in one run:

  Ray Tune                  a plain-PyTorch function trainable over the same 18 trials
                            (benchmarks/packs.py's, with the trial's cell), 1 CPU per trial,
                            in a fresh local Ray; what a user would write
  rnnsweep                  `rnnsweep submit` as shipped (run_sweep, fresh local Ray)
  rnnsweep, pathology stop  the same with training.early_stop = "pathology": trials whose
                            diagnosis is clear mid-run (diverged, l2_collapsed,
                            constant_output) stop and free their slot
  bare arithmetic           the Tune trainable's training in a plain loop, one thread, divided
                            by the cores: what scheduling alone could reach, with every trial
                            trained to its end
  bare, stopped trials      the same loop, each trial ended after the steps the pathology stop
                            let it run: the bound for any scheduler that stops those trials
                            where rnnsweep did

ray.init is part of each way's time (a user waits for it). trials/hour counts the 18 trials
as done whether they ran to their end or were stopped. Median of --repeats; the ways take
turns within each repeat.

    python benchmarks/early_stop.py               # 1 repeat, about 5 minutes on 2 cores
    python benchmarks/early_stop.py --repeats 3
    python benchmarks/early_stop.py --smoke-test  # 2 epochs: proves the script runs

Needs Ray Tune: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packs  # noqa: E402  (the Tune trainable, shared with benchmarks/packs.py)

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.toml"
CORES = 2


def load(workdir: Path, epochs: int, early_stop: str):
    """The quickstart grid, with its epochs and training.early_stop set, under a fresh name."""
    from rnnsweep.service.spec import load_grid

    text = QUICKSTART.read_text().replace("epochs = 8", f"epochs = {epochs}")
    text = text.replace('name = "quickstart"', f'name = "bench-{early_stop}"')
    text = text.replace("[training]\n", f'[training]\nearly_stop = "{early_stop}"\n')
    path = workdir / "grid.toml"
    path.write_text(text)
    return load_grid(path)


def tune_way(workdir: Path, epochs: int) -> float:
    import ray
    from ray import tune

    ray.cloudpickle.register_pickle_by_value(packs)  # workers cannot import benchmarks/
    grid = load(workdir, epochs, "off")
    base = grid.trials[0].model_dump(mode="json", exclude={"seed"})
    began = time.perf_counter()
    ray.init(num_cpus=CORES, include_dashboard=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(packs.tune_trainable, base=base), {"cpu": 1}),
            param_space={
                "cell": tune.grid_search(sorted({t.model.cell for t in grid.trials})),
                "lr": tune.grid_search(sorted({t.optimizer.lr for t in grid.trials})),
                "weight_decay": tune.grid_search(sorted({t.optimizer.weight_decay for t in grid.trials})),
                "seed": grid.trials[0].seed,
            },
            run_config=tune.RunConfig(name="bench", storage_path=str(workdir / "ray_results"), verbose=0),
        )
        results = tuner.fit()
        assert len(results) == len(grid.trials) and results.num_errors == 0
    finally:
        ray.shutdown()
    return time.perf_counter() - began


def rnnsweep_way(workdir: Path, epochs: int, early_stop: str) -> tuple[float, list[int]]:
    """Seconds, and the optimizer steps each trial took (in the grid's order)."""
    from rnnsweep.service.query import run_query
    from rnnsweep.service.submit import run_sweep

    grid = load(workdir, epochs, early_stop)
    began = time.perf_counter()
    run_sweep(grid, workdir / "wh.duckdb", str(workdir / "logs"), num_cpus=CORES, show_progress=False)
    seconds = time.perf_counter() - began
    steps = run_query(workdir / "wh.duckdb", "select steps from runs order by trial_index").column("steps")
    return seconds, [int(s) for s in steps.to_pylist()]


def bare_way(workdir: Path, epochs: int, steps: list[int] | None = None) -> float:
    """The plain loop over the trials, one thread, divided by the cores; `steps` ends each trial early."""
    grid = load(workdir, epochs, "off")
    base = grid.trials[0].model_dump(mode="json", exclude={"seed"})
    began = time.perf_counter()
    for i, trial in enumerate(grid.trials):
        config = {"cell": trial.model.cell, "lr": trial.optimizer.lr, "weight_decay": trial.optimizer.weight_decay}
        packs.tune_trainable(
            config | {"seed": trial.seed}, base, report=lambda metrics: None, max_steps=steps[i] if steps else None
        )
    return (time.perf_counter() - began) / CORES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--smoke-test", action="store_true", help="2 epochs, 1 repeat")
    args = parser.parse_args()
    epochs = 2 if args.smoke_test else 8
    ways = ("tune", "rnnsweep", "pathology", "bare", "bare_stopped")
    times: dict[str, list[float]] = {w: [] for w in ways}
    steps: dict[str, list[int]] = {}
    for repeat in range(1 if args.smoke_test else args.repeats):
        for way in ways:
            with tempfile.TemporaryDirectory(prefix="rnnsweep-es-") as tmp:
                workdir = Path(tmp)
                if way == "tune":
                    seconds = tune_way(workdir, epochs)
                elif way == "bare":
                    seconds = bare_way(workdir, epochs)
                elif way == "bare_stopped":  # the steps the pathology way just ran
                    seconds = bare_way(workdir, epochs, steps["pathology"])
                    steps[way] = steps["pathology"]
                else:
                    seconds, steps[way] = rnnsweep_way(workdir, epochs, "off" if way == "rnnsweep" else "pathology")
            times[way].append(seconds)
            print(f"[repeat {repeat + 1}] {way}: {seconds:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="rnnsweep-es-") as tmp:
        grid = load(Path(tmp), epochs, "off")
    trials = len(grid.trials)
    planned = trials * epochs * (grid.trials[0].data.n_train // grid.trials[0].training.batch_size)
    tune = statistics.median(times["tune"])
    print(f"\nquickstart grid, {trials} trials, {epochs} epochs, {CORES} cores; median of {len(times['tune'])}")
    print(f"| {'way':<42} | {'wall s':>7} | {'trials/hour':>11} | {'vs Tune':>7} | {'steps run':>13} |")
    print(f"|{'-' * 44}|{'-' * 9}|{'-' * 13}|{'-' * 9}|{'-' * 15}|")
    labels = {
        "tune": "Ray Tune, plain PyTorch trainable",
        "rnnsweep": "rnnsweep submit",
        "pathology": 'rnnsweep, early_stop = "pathology"',
        "bare": f"bare arithmetic (plain loop / {CORES} cores)",
        "bare_stopped": "bare arithmetic, pathology's steps",
    }
    for way, label in labels.items():
        t = statistics.median(times[way])
        ran = f"{sum(steps[way]):,} / {planned:,}" if way in steps else ""
        print(f"| {label:<42} | {t:>7.1f} | {3600 * trials / t:>11,.0f} | {tune / t:>6.2f}x | {ran:>13} |")


if __name__ == "__main__":
    main()
