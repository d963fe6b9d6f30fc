"""What `rnnsweep.jobs.run.Run` costs a hand-written loop: the same loop plain, with `run.log`
every step, and with `run.log` + `run.watch` (an evaluation with instrumentation every
`--eval-every` steps). One process, one thread; the plain loop calls `loss.item()` too, as
almost every real loop does, so the difference is rnnsweep's alone. Median of `--repeats`.

    python benchmarks/run_overhead.py                 # GRU 32, seq 40, batch 64, 500 steps
    python benchmarks/run_overhead.py --hidden 128 --steps 200
    python benchmarks/run_overhead.py --smoke-test
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

from rnnsweep.jobs.run import Run


class Model(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = nn.GRU(4, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[1][-1])


def loop(args, run: Run | None, watch: bool) -> float:
    torch.manual_seed(0)
    model = Model(args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(args.batch, args.seq_len, 4), torch.randn(args.batch, 1)
    x_val, y_val = torch.randn(256, args.seq_len, 4), torch.randn(256, 1)
    if run is not None and watch:
        run.watch(model)
    began = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        if run is not None:
            run.log(step, train_loss=value)
        if step % args.eval_every == 0:
            with torch.no_grad():
                val = nn.functional.mse_loss(model(x_val), y_val).item()
            if run is not None:
                run.log(step, val_loss=val)
    return time.perf_counter() - began


def timed(args, way: str) -> float:
    if way == "plain":
        return loop(args, None, False)
    with tempfile.TemporaryDirectory() as storage, Run(sweep="bench", config={"way": way}, storage=storage) as run:
        return loop(args, run, watch=way == "log + watch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke-test", action="store_true", help="20 steps, 1 repeat")
    args = parser.parse_args()
    if args.smoke_test:
        args.steps, args.eval_every, args.repeats = 20, 10, 1
    torch.set_num_threads(1)
    ways = ["plain", "run.log", "log + watch"]
    timed(args, "plain")  # warm-up: first-call allocations, untimed
    times = {way: [] for way in ways}
    for _ in range(args.repeats):
        for way in ways:  # interleaved, so drift hits every way alike
            times[way].append(timed(args, way))
    plain = statistics.median(times["plain"])
    print(
        f"GRU {args.hidden}, seq {args.seq_len}, batch {args.batch}, {args.steps} steps, eval every "
        f"{args.eval_every}; 1 thread, torch {torch.__version__}; median of {args.repeats}"
    )
    print(f"| {'loop':<12} | {'s':>7} | {'+us per step':>12} | {'vs plain':>8} |")
    print(f"|{'-' * 14}|{'-' * 9}|{'-' * 14}|{'-' * 10}|")
    for way in ways:
        t = statistics.median(times[way])
        extra = 1e6 * (t - plain) / args.steps
        print(f"| {way:<12} | {t:>7.3f} | {extra:>+12.1f} | {t / plain:>7.3f}x |")


if __name__ == "__main__":
    main()
