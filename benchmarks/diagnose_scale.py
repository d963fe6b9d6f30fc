"""How long `rnnsweep diagnose` takes on a big warehouse: 10,000 runs x 1,000 steps.

Each run logs what rnnsweep's own trials log: train_loss, grad_norm and lr every step, and
every 50 steps val_loss, val_acc, pred_std, weight_norm and sigma_max_hh, plus target_std
and n_classes once (about 3,160 rows per run, 31.6 million in all). Curves are synthetic,
drawn per run from five shapes (healthy, overfitting, diverging, L2-collapsing, constant),
so every rule has work to do. The warehouse is built once (DuckDB SQL, about a minute) and
kept at --warehouse; then the full diagnosis is timed through the same sandboxed read-only
connection the CLI uses (2 threads, 2 GB). Median of --repeats.

    python benchmarks/diagnose_scale.py                       # 10,000 x 1,000, 3 repeats
    python benchmarks/diagnose_scale.py --runs 1000 --smoke-test
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

import duckdb

from rnnsweep.service.diagnose import diagnose
from rnnsweep.service.warehouse import Warehouse

# One statement builds every metric row; shape = run_id % 5.
FILL_METRICS = """
insert into metrics
with runs as (select range as r, range % 5 as shape from range($runs)),
steps as (select range + 1 as s from range($steps)),
per_step as (
    select r, shape, s,
        case shape
            when 0 then 0.1 + 1.3 * exp(-s / 150.0)                                        -- healthy
            when 1 then 0.02 + 1.3 * exp(-s / 100.0)                                       -- overfitting (train fine)
            when 2 then case when s < 400 then 0.2 + 1.2 * exp(-s / 100.0) else 1.2 end     -- diverging
            else 1.386                                                                      -- collapsed / constant
        end * (1 + 0.2 * (random() - 0.5)) as loss
    from runs, steps
),
step_rows as (
    select r, s, 'train_loss' as metric, loss as value from per_step
    union all select r, s, 'grad_norm', 1 + random() from per_step
    union all select r, s, 'lr', 0.001 from per_step
),
evals as (
    select r, shape, s from runs, (select range * 50 as s from range($steps // 50 + 1))
),
eval_rows as (
    select r, s, 'val_loss' as metric,
        case shape
            when 0 then 0.15 + 1.2 * exp(-s / 150.0)
            when 1 then 0.5 + 0.9 * exp(-s / 100.0) + greatest(0, s - 300) / 700.0
            when 2 then case when s < 400 then 0.3 + 1.1 * exp(-s / 100.0) else 1.25 end
            else 1.386
        end as value
    from evals
    union all select r, s, 'val_acc', case when shape in (3, 4) then 0.25 else 0.9 - 0.6 * exp(-s / 150.0) end from evals
    union all select r, s, 'pred_std', case when shape = 4 and s > 100 then 0.0001 else 0.3 end from evals
    union all select r, s, 'weight_norm', case when shape = 3 then 20 * exp(-s / 200.0) else 20 + s / 100.0 end from evals
    union all select r, s, 'sigma_max_hh', case when shape = 3 then 1.5 * exp(-s / 200.0) else 1.5 + s / 500.0 end from evals
    union all select r, 0, 'target_std', 0.43 from runs
    union all select r, 0, 'n_classes', 4 from runs
)
select 'bench' || r::varchar, 0, 0, s, s // 100, metric, value from step_rows
union all
select 'bench' || r::varchar, 0, 0, s, s // 100, metric, value from eval_rows
"""
FILL_RUNS = """
insert into runs (run_id, sweep, trial_index, status, attempts, steps, config)
select 'bench' || range::varchar, 'bench', range, 'finished', 1, $steps,
    '{"task": "sequences4", "optimizer": {"lr": 0.001, "weight_decay": ' || case when range % 5 = 3 then '0.1' else '0.0' end || '}}'
from range($runs)
"""
REGISTER_SWEEP = "insert into sweeps values ('bench', 'benchmark', '', '', [], now(), now())"


def build(path: Path, runs: int, steps: int) -> float:
    began = time.perf_counter()
    with Warehouse.open(path, build_views=True) as wh:
        wh.con.execute(REGISTER_SWEEP)
        wh.con.execute(FILL_RUNS, {"runs": runs, "steps": steps})
        wh.con.execute(FILL_METRICS, {"runs": runs, "steps": steps})
        wh.con.execute("checkpoint")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warehouse", type=Path, default=None, help="default: /tmp/rnnsweep-bench-RUNSxSTEPS.duckdb")
    parser.add_argument("--smoke-test", action="store_true", help="200 runs x 200 steps, 1 repeat")
    args = parser.parse_args()
    if args.smoke_test:
        args.runs, args.steps, args.repeats = 200, 200, 1
    path = args.warehouse or Path(f"/tmp/rnnsweep-bench-v2-{args.runs}x{args.steps}.duckdb")
    if not path.exists():
        print(f"building {path} ...", flush=True)
        print(f"built in {build(path, args.runs, args.steps):.1f} s", flush=True)
    rows = duckdb.connect(str(path), read_only=True).execute("select count(*) from metrics").fetchone()[0]

    times, table = [], None
    for _ in range(args.repeats):
        began = time.perf_counter()
        table = diagnose(path, "bench")
        times.append(time.perf_counter() - began)
    labels = Counter(table.column("label").to_pylist())
    print(f"{args.runs:,} runs x {args.steps:,} steps = {rows:,} metric rows ({path.stat().st_size / 2**20:.0f} MiB)")
    print("| what | seconds |")
    print("|---|---|")
    print(f"| rnnsweep diagnose, median of {args.repeats} | {statistics.median(times):.2f} |")
    print(f"| all repeats | {', '.join(f'{t:.2f}' for t in times)} |")
    print(f"labels: {dict(labels)}")


if __name__ == "__main__":
    main()
