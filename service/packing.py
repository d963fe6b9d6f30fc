"""Which trials train together: grouping a sweep's trials into packs (one Ray task each).

Trials pack when they share a shape (rnnsweep.jobs.shapes.pack_key). The pack size is
`resources.pack_size` when set, else chosen from the device and the model: enough members
that one fused step carries about a budget of multiply-adds (small models pack more), but
never so few packs that Ray slots sit idle. Measured on a 2-core CPU (benchmarks/fusion.py):
a bidirectional GRU 32 trains 1.46x faster at 4 members, 1.44x at 8, 1.28x at 16, 0.89x at
32 once the stacked tensors outgrow the cache (the CPU budget lands it at about 8); GRU 48
1.77x at 4, RNN 32 1.99x at 8; but LSTMs lose to torch's CPU kernel (0.6-0.7x), so on a CPU
they train alone unless `pack_size` says otherwise. The GPU budget assumes a small RNN
leaves a GPU mostly idle; it has not been measured.
"""

from __future__ import annotations

import math
from collections import defaultdict

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.shapes import GATES, input_channels, pack_key

MAX_PACK = 64
STEP_BUDGET = {"cpu": 1.5e8, "gpu": 1e10}  # multiply-adds per fused optimizer step


def step_work(config: TrialConfig) -> float:
    """Multiply-adds of one member's forward step: batch x time x gates x H x (inputs + H), per layer and direction."""
    m, d = config.model, 2 if config.model.bidirectional else 1
    # A file's channels are known once a worker reads it; for this estimate data.n_features stands in.
    features = config.data.n_features if config.task == "file" else input_channels(config.task, config.data)
    per_layer = [features] + [m.hidden * d] * (m.layers - 1)
    macs = sum(GATES[m.cell] * m.hidden * (inputs + m.hidden) * d for inputs in per_layer)
    return config.training.batch_size * config.data.seq_len * macs


def auto_pack_size(config: TrialConfig) -> int:
    device = "gpu" if config.resources.gpus_per_trial > 0 else "cpu"
    if device == "cpu" and config.model.cell == "lstm":
        # torch's CPU LSTM kernel beats the written-out cell: fused LSTMs measured 0.6-0.7x
        # of the same trials one by one (benchmarks/fusion.py), where GRU and RNN gain 1.5-2x.
        return 1
    return max(1, min(MAX_PACK, int(STEP_BUDGET[device] // max(step_work(config), 1.0))))


def unit_work(unit: list[TrialConfig]) -> float:
    """Multiply-adds of a unit's whole training (forward), members summed: an estimate to order by."""
    return sum(step_work(t) * t.epochs * math.ceil(t.data.n_train / t.training.batch_size) for t in unit)


def plan_packs(trials: list[TrialConfig], slots: int, enabled: bool = True) -> list[list[TrialConfig]]:
    """Trials grouped into units of work, each a Ray task: singles, or packs of one shape,
    the most work first.

    `slots`: how many tasks the cluster runs at once; a group is split into at least that
    many packs (when it has that many trials), so packing never leaves a CPU idle.
    Longest first because the sweep ends when its last unit does: a big pack started last
    runs alone while the other slots idle (on the quickstart, 10 s of a 41 s sweep with one
    of two CPUs idle); started first, the small units fill in around it.
    """
    groups: dict[str, list[TrialConfig]] = defaultdict(list)
    units: list[list[TrialConfig]] = []
    for trial in trials:
        chosen = trial.resources.pack_size or auto_pack_size(trial)
        key = pack_key(trial) if enabled and chosen != 1 else None
        if key is None:
            units.append([trial])
        else:
            groups[key].append(trial)
    packable = sum(len(members) for members in groups.values())
    for members in groups.values():
        chosen = members[0].resources.pack_size or auto_pack_size(members[0])
        # The slots are shared by every group, in proportion to its trials.
        fair_share = math.ceil(max(1, slots) * len(members) / packable)
        count = max(math.ceil(len(members) / chosen), min(len(members), fair_share))
        if members[0].resources.pack_size:  # the user's size is a size, not a minimum count
            count = math.ceil(len(members) / chosen)
        size = math.ceil(len(members) / count)
        units += [members[i : i + size] for i in range(0, len(members), size)]
    return sorted(units, key=unit_work, reverse=True)  # stable: equal estimates keep grid order
