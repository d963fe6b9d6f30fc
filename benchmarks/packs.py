"""Packs: one grid run three ways on a local Ray, and how fast metric chunks land in DuckDB.

Table 1 trains the same grid (default 32 small trials: events task, bidirectional GRU 32,
sequences of 40 steps, 2,048 training and 512 validation sequences, batch 64, 1 epoch;
lr x weight_decay x seeds) three ways, each in its own fresh local Ray with 2 CPUs:

  Ray Tune      the peer a user would pick: a plain-PyTorch function trainable (nn.GRU +
                linear head, Adam with the trial's lr and weight_decay, BCEWithLogitsLoss),
                1 CPU per trial, val loss reported with tune.report after every epoch;
                Tune's default loggers and progress output, its storage in a temp dir.
  rnnsweep      run_sweep(..., pack=False): one Ray task per trial.
  rnnsweep      run_sweep(..., pack=True): trials of one shape trained as one fused model
  packs         per Ray task (the default of `rnnsweep submit`).

Every way trains on the same data (rnnsweep.jobs.tasks.load_task, called inside each trial
or pack, as rnnsweep does), seeds its model and batch order from the trial's seed, and ends
with the same number of optimizer steps. rnnsweep does more per trial than the Tune
trainable: it logs every step (losses, gradient norm, lr), evaluates an untrained baseline
and instruments every evaluation (sigma_max of W_hh, weight norm, update ratio, scores),
and loads it all into DuckDB. ray.init (same arguments for all three) is timed apart from
the sweep; "total" is both, what a user waits for. Ratios are trials/hour over Tune's, from
the same run. Median of --repeats; the ways take turns within each repeat.

Table 2 times DuckDB ingest of metric chunks: N Arrow chunks written in rnnsweep's layout
(rnnsweep.jobs.metric_log.MetricLog, ~CHUNK_STEPS steps of train_loss/grad_norm/lr plus an
evaluation each), loaded by rnnsweep's real loader (SweepLoader.write: list the chunks in
storage, read them, insert with the exactly-once ledger in one transaction), and by
Warehouse.load_chunks alone, against the peer: a plain duckdb INSERT of the same rows, from
an Arrow table already in memory, into a bare table in a fresh file database.

    python benchmarks/packs.py                  # 32 trials, 3 repeats, 2,000 chunks
    python benchmarks/packs.py --trials 64 --epochs 2 --repeats 5
    python benchmarks/packs.py --quick          # tiny settings; proves the script runs

Needs Ray Tune: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

RAY_INIT = {"num_cpus": 2, "include_dashboard": False}  # the same local Ray for every way

GRID_TEMPLATE = """\
[sweep]
name = "{name}"
task = "events"
seeds = {seeds}
epochs = {epochs}
evals_per_epoch = 1

[data]
n_train = {n_train}
n_val = {n_val}
seq_len = {seq_len}

[model]
cell = "gru"
hidden = {hidden}
bidirectional = true

[optimizer]
name = "adam"
lr = {lrs}
weight_decay = {wds}

[training]
batch_size = {batch}

[resources]
cpus_per_trial = 1
"""


# -- the grid ------------------------------------------------------------------------


def axes_for(trials: int) -> tuple[list[float], list[float], list[int]]:
    """lr, weight_decay and seed values whose product is exactly `trials` (32 -> 4 x 4 x 2)."""
    seeds = 2 if trials % 2 == 0 and trials >= 8 else 1
    rest = trials // seeds
    n_lr = max(d for d in range(1, math.isqrt(rest) + 1) if rest % d == 0)
    n_wd = rest // n_lr
    lrs = [float(f"{1e-3 * 10 ** (i / max(1, n_lr - 1) * 1.5 - 0.5):.3g}") for i in range(n_lr)]  # 3e-4 .. 1e-2
    wds = [0.0] + [float(f"{10 ** (-4 + 2 * i / max(1, n_wd - 2)):.3g}") for i in range(n_wd - 1)]  # 0, 1e-4 .. 1e-2
    return lrs, wds, list(range(seeds))


def write_grid(directory: Path, name: str, args: argparse.Namespace):
    from rnnsweep.service.spec import load_grid

    lrs, wds, seeds = axes_for(args.trials)
    text = GRID_TEMPLATE.format(
        name=name,
        seeds=seeds,
        epochs=args.epochs,
        lrs=lrs,
        wds=wds,
        **args.shape,
    )
    path = directory / "grid.toml"
    path.write_text(text)
    grid = load_grid(path)
    assert len(grid.trials) == args.trials, (len(grid.trials), args.trials)
    return grid


# -- way 1: Ray Tune with a plain-PyTorch trainable ----------------------------------


def tune_trainable(config: dict, base: dict, report=None, max_steps: int | None = None) -> None:
    """What a user writes for Tune: the same model, data, optimizer and loss, no instrumentation.
    `config` may also choose the cell ("gru" or "lstm"); `report` replaces tune.report (a plain
    loop outside Tune passes one that drops the numbers); `max_steps` ends training after that
    many optimizer steps (benchmarks/early_stop.py: the arithmetic of a trial stopped early)."""
    import torch
    from torch import nn

    if report is None:
        from ray.tune import report

    from rnnsweep.jobs.config import TrialConfig
    from rnnsweep.jobs.tasks import load_task

    trial = TrialConfig.model_validate(base | {"seed": config["seed"]})
    torch.set_num_threads(1)  # 1 CPU per trial, as rnnsweep sets it
    torch.manual_seed(trial.seed)
    data = load_task(trial)
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train).float().unsqueeze(-1)
    x_val, y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val).float().unsqueeze(-1)

    cell = {"gru": nn.GRU, "lstm": nn.LSTM}[config.get("cell", trial.model.cell)]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cell(data.n_features, trial.model.hidden, batch_first=True, bidirectional=True)
            self.head = nn.Linear(2 * trial.model.hidden, 1)

        def forward(self, x):
            _, h = self.rnn(x)
            h = h[0] if isinstance(h, tuple) else h  # an LSTM's (h_n, c_n)
            return self.head(torch.cat([h[-2], h[-1]], dim=-1))

    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([trial.training.pos_weight]))
    order = torch.Generator().manual_seed(trial.seed)
    batch = trial.training.batch_size
    steps = 0
    for epoch in range(1, trial.epochs + 1):
        model.train()
        permutation = torch.randperm(len(x_train), generator=order)
        for i in range(0, len(x_train), batch):
            if steps == max_steps:
                return
            rows = permutation[i : i + batch]
            loss = loss_fn(model(x_train[rows]), y_train[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(x_val), y_val).item()
        report({"val_loss": val_loss, "epoch": epoch})


def run_tune(grid, workdir: Path) -> tuple[float, int, float]:
    """Tuner.fit on the grid's axes; (seconds, trials that ended without error, median final val_loss)."""
    from ray import tune

    first = grid.trials[0]
    base = first.model_dump(mode="json", exclude={"seed"})
    lrs = sorted({t.optimizer.lr for t in grid.trials})
    wds = sorted({t.optimizer.weight_decay for t in grid.trials})
    seeds = sorted({t.seed for t in grid.trials})
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(tune_trainable, base=base), {"cpu": 1}),
        param_space={
            "lr": tune.grid_search(lrs),
            "weight_decay": tune.grid_search(wds),
            "seed": tune.grid_search(seeds),
        },
        tune_config=tune.TuneConfig(metric="val_loss", mode="min"),
        run_config=tune.RunConfig(name=grid.name, storage_path=str(workdir / "ray_results")),
    )
    began = time.perf_counter()
    results = tuner.fit()
    seconds = time.perf_counter() - began
    ok = len(results) - results.num_errors
    frame = results.get_dataframe()
    losses = frame["val_loss"].dropna().tolist() if "val_loss" in frame else []
    return seconds, ok, statistics.median(losses) if losses else math.nan


# -- ways 2 and 3: rnnsweep ----------------------------------------------------------

FINAL_VAL_LOSS = """
select value from metrics where metric = 'val_loss'
qualify row_number() over (partition by run_id order by step desc) = 1
"""


def run_rnnsweep(grid, workdir: Path, pack: bool) -> tuple[float, int, float]:
    """run_sweep on a fresh warehouse and storage; (seconds, runs finished, median final val_loss)."""
    import duckdb

    from rnnsweep.service.submit import run_sweep

    warehouse = workdir / "warehouse.duckdb"
    began = time.perf_counter()
    report = run_sweep(grid, warehouse, str(workdir / "logs"), num_cpus=2, show_progress=False, pack=pack)
    seconds = time.perf_counter() - began
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        losses = [row[0] for row in con.execute(FINAL_VAL_LOSS).fetchall()]
    finally:
        con.close()
    ok = report.counts.get("finished", 0)
    return seconds, ok, statistics.median(losses) if losses else math.nan


def in_fresh_ray(run, *args) -> tuple[float, tuple]:
    """ray.init (timed), run, ray.shutdown: every way pays its own start-up and worker imports."""
    import ray

    began = time.perf_counter()
    ray.init(**RAY_INIT)
    started = time.perf_counter() - began
    try:
        return started, run(*args)
    finally:
        ray.shutdown()


WAYS = {
    "Ray Tune (plain PyTorch trainable)": lambda grid, workdir: run_tune(grid, workdir),
    "rnnsweep, one task per trial (--no-pack)": lambda grid, workdir: run_rnnsweep(grid, workdir, pack=False),
    "rnnsweep, packs (default)": lambda grid, workdir: run_rnnsweep(grid, workdir, pack=True),
}


def bench_sweeps(args: argparse.Namespace) -> dict[str, dict[str, list]]:
    samples = {way: {"init": [], "run": [], "ok": [], "val": []} for way in WAYS}
    for repeat in range(args.repeats):
        for index, (way, run) in enumerate(WAYS.items()):
            with tempfile.TemporaryDirectory(prefix="rnnsweep-packs-") as tmp:
                grid = write_grid(Path(tmp), f"packs-r{repeat}-w{index}", args)
                started, (seconds, ok, val) = in_fresh_ray(run, grid, Path(tmp))
            for key, value in zip(("init", "run", "ok", "val"), (started, seconds, ok, val), strict=True):
                samples[way][key].append(value)
            print(
                f"[repeat {repeat + 1}/{args.repeats}] {way}: ray.init {started:.2f} s, sweep {seconds:.2f} s, {ok}/{args.trials} ok",
                flush=True,
            )
    return samples


# -- table 2: DuckDB ingest of metric chunks -----------------------------------------


def write_chunks(storage: Path, sweep: str, runs: int, chunks_per_run: int):
    """Chunks as a trial writes them: CHUNK_STEPS steps of train_loss/grad_norm/lr, then an evaluation."""
    import random

    from rnnsweep.jobs.config import TrialConfig
    from rnnsweep.jobs.metric_log import CHUNK_STEPS, MetricLog, attempt_dir, claim_attempt, resolve_storage

    fs, base = resolve_storage(str(storage))
    trials = [TrialConfig(sweep=sweep, task="events", seed=i, epochs=1) for i in range(runs)]
    rng = random.Random(0)
    evaluation = ["val_loss", "val_acc", "val_recall", "val_f1", "pred_std", "weight_norm", "update_ratio"]
    evaluation += ["sigma_max_hh_l0", "sigma_max_hh_l0_reverse", "sigma_max_hh", "train_acc", "train_recall"]
    for trial in trials:
        attempt = claim_attempt(fs, base, sweep, trial.run_id, "bench")
        log = MetricLog(fs, attempt_dir(base, sweep, trial.run_id, attempt), trial.run_id, attempt)
        step = 0
        for _ in range(chunks_per_run):
            for _ in range(CHUNK_STEPS):
                step += 1
                log.add(step, 1, {"train_loss": rng.random(), "grad_norm": rng.random(), "lr": 1e-3})
            log.add(step, 1, {name: rng.random() for name in evaluation})
            log.flush()
    return trials, fs, base


def bench_ingest(args: argparse.Namespace) -> tuple[int, int, dict[str, list[float]]]:
    import duckdb
    import pyarrow as pa

    from rnnsweep.jobs.metric_log import list_chunks, read_chunk
    from rnnsweep.service.submit import SweepLoader
    from rnnsweep.service.warehouse import Warehouse

    runs = max(1, args.chunks // args.chunks_per_run)
    times: dict[str, list[float]] = {"peer": [], "load_chunks": [], "loader": []}
    rows = 0
    with tempfile.TemporaryDirectory(prefix="rnnsweep-ingest-") as tmp:
        tmp = Path(tmp)
        sweep = "ingest"
        trials, fs, base = write_chunks(tmp / "logs", sweep, runs, args.chunks_per_run)
        run_ids = [t.run_id for t in trials]
        chunks = [c for run_id in run_ids for c in list_chunks(fs, base, sweep, run_id)]
        incoming = pa.concat_tables([read_chunk(fs, c.path) for c in chunks])
        rows = incoming.num_rows
        for repeat in range(args.repeats):
            # Peer: a bare table in a fresh file database, one INSERT from the Arrow table in memory.
            path = tmp / f"peer-{repeat}.duckdb"
            con = duckdb.connect(str(path))
            con.execute(
                "create table metrics (run_id varchar, attempt integer, chunk integer, step bigint,"
                " epoch integer, metric varchar, value double)"
            )
            con.close()
            began = time.perf_counter()
            con = duckdb.connect(str(path))
            con.register("incoming", incoming)
            con.execute("insert into metrics select * from incoming")
            con.close()
            times["peer"].append(time.perf_counter() - began)

            # rnnsweep: a fresh warehouse with the sweep's runs registered (untimed), then a load.
            for key in ("load_chunks", "loader"):
                warehouse = tmp / f"{key}-{repeat}.duckdb"
                with Warehouse.open(warehouse) as wh:
                    wh.register_sweep(sweep, "grid.toml", "", str(tmp / "logs"), [], trials)
                began = time.perf_counter()
                if key == "load_chunks":
                    with Warehouse.open(warehouse) as wh:
                        wh.load_chunks(fs, chunks)
                else:
                    SweepLoader(warehouse, str(tmp / "logs"), sweep).write(run_ids)
                times[key].append(time.perf_counter() - began)
                con = duckdb.connect(str(warehouse), read_only=True)
                loaded = con.execute("select count(*) from metrics").fetchone()[0]
                con.close()
                assert loaded == rows, (key, loaded, rows)
    return len(chunks), rows, times


# -- output --------------------------------------------------------------------------


def machine() -> str:
    import duckdb
    import pyarrow
    import ray
    import torch

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"machine: {os.cpu_count()} cores ({platform.machine()}, {platform.system()}), load average {load}; "
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"ray {ray.__version__}, duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__}"
    )


def print_sweeps(args: argparse.Namespace, samples: dict[str, dict[str, list]]) -> None:
    from rnnsweep.service.packing import plan_packs

    with tempfile.TemporaryDirectory() as tmp:
        grid = write_grid(Path(tmp), "plan", args)
    lrs, wds, seeds = axes_for(args.trials)
    sizes = sorted((len(unit) for unit in plan_packs(grid.trials, RAY_INIT["num_cpus"])), reverse=True)
    shape = args.shape
    print()
    print(
        f"{args.trials} trials ({len(lrs)} lr x {len(wds)} weight_decay x {len(seeds)} seeds): events, bidirectional GRU "
        f"{shape['hidden']}, seq_len {shape['seq_len']}, {shape['n_train']} train / {shape['n_val']} val, batch "
        f"{shape['batch']}, {args.epochs} epoch(s); local Ray, 2 CPUs, 1 CPU per trial or pack; median of {args.repeats}"
    )
    print(f"packs planned: {len(sizes)} Ray tasks of {', '.join(map(str, sizes))} trials")
    tune_way = next(iter(WAYS))
    tune_total = statistics.median(
        a + b for a, b in zip(samples[tune_way]["init"], samples[tune_way]["run"], strict=True)
    )
    tune_run = statistics.median(samples[tune_way]["run"])
    head = (
        f"| {'way':<42} | {'ray.init s':>10} | {'sweep s':>8} | {'total s':>8} | {'trials/h':>9} | {'vs Tune':>7} "
        f"| {'trials/h excl. init':>19} | {'vs Tune':>7} | {'ok':>7} | {'final val_loss':>14} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in head.split("|")[1:-1]) + "|")
    for way, s in samples.items():
        init, run = statistics.median(s["init"]), statistics.median(s["run"])
        total = statistics.median(a + b for a, b in zip(s["init"], s["run"], strict=True))
        rate, rate_run = 3600 * args.trials / total, 3600 * args.trials / run
        ok = f"{min(s['ok'])}/{args.trials}"
        val = statistics.median(s["val"])
        print(
            f"| {way:<42} | {init:>10.2f} | {run:>8.2f} | {total:>8.2f} | {rate:>9,.0f} | {tune_total / total:>6.2f}x "
            f"| {rate_run:>19,.0f} | {tune_run / run:>6.2f}x | {ok:>7} | {val:>14.4f} |"
        )
    print(
        "trials/h from the median total (ray.init + sweep) and from the median sweep alone; vs Tune = trials/h over Tune's."
    )
    print(
        "ok: trials that ended without error (rnnsweep: runs finished), worst repeat; final val_loss: median over trials."
    )
    for way, s in samples.items():
        print(
            f"all repeats, {way}: sweep {[round(x, 2) for x in s['run']]}, ray.init {[round(x, 2) for x in s['init']]}"
        )


def print_ingest(args: argparse.Namespace, chunks: int, rows: int, times: dict[str, list[float]]) -> None:
    peer = statistics.median(times["peer"])
    print()
    print(
        f"DuckDB ingest: {chunks:,} metric chunks ({rows:,} rows, {max(1, args.chunks // args.chunks_per_run)} runs x "
        f"{args.chunks_per_run} chunks) loaded at once into a fresh file database; median of {args.repeats}"
    )
    head = f"| {'loader':<62} | {'seconds':>8} | {'rows/s':>12} | {'vs peer':>7} |"
    print(head)
    print("|" + "|".join("-" * len(cell) for cell in head.split("|")[1:-1]) + "|")
    names = {
        "peer": "duckdb INSERT from an in-memory Arrow table, bare table (peer)",
        "load_chunks": "rnnsweep Warehouse.load_chunks (read chunks + ledger)",
        "loader": "rnnsweep SweepLoader.write (list storage + load_chunks)",
    }
    for key, name in names.items():
        seconds = statistics.median(times[key])
        rate = rows / seconds
        print(f"| {name:<62} | {seconds:>8.3f} | {rate:>12,.0f} | {peer / seconds:>6.2f}x |")
    print(
        "vs peer = rows/s over the peer's; every rnnsweep row includes opening and closing the warehouse, as the peer's does."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=32, help="trials in the grid (lr x weight_decay x seeds)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--chunks", type=int, default=2000, help="metric chunks for the ingest table")
    parser.add_argument("--chunks-per-run", type=int, default=10)
    parser.add_argument("--skip-sweeps", action="store_true", help="only the ingest table")
    parser.add_argument("--quick", action="store_true", help="tiny smoke settings: 4 trials, small data, 1 repeat")
    args = parser.parse_args()
    args.shape = {"hidden": 32, "seq_len": 40, "n_train": 2048, "n_val": 512, "batch": 64}
    if args.quick:
        args.trials, args.repeats, args.epochs, args.chunks = 4, 1, 1, 40
        args.shape = {"hidden": 16, "seq_len": 20, "n_train": 256, "n_val": 64, "batch": 64}
    if args.trials < 1 or args.repeats < 1 or args.epochs < 1 or args.chunks < 1 or args.chunks_per_run < 1:
        parser.error("--trials, --repeats, --epochs, --chunks and --chunks-per-run must be >= 1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    if ray.is_initialized():
        parser.error("a Ray is already initialised in this process; every way needs its own")
    header = machine()
    samples = None
    if not args.skip_sweeps:
        # Untimed: the first ray.init of a process pays one-off imports no way should be charged.
        ray.init(**RAY_INIT)
        ray.shutdown()
        samples = bench_sweeps(args)
    chunks, rows, times = bench_ingest(args)

    print()
    print(header)
    if samples is not None:
        print_sweeps(args, samples)
    print_ingest(args, chunks, rows, times)


if __name__ == "__main__":
    main()
