"""Integrations: rnnsweep inside the tools people already train with.

- `rnnsweep.jobs.integrations.lightning.RnnsweepLogger`: a PyTorch Lightning logger;
- `rnnsweep.jobs.integrations.tune.RnnsweepCallback`: a Ray Tune callback.

Each makes a `rnnsweep.jobs.run.Run` per training run and forwards what the tool reports, so
`rnnsweep sync` loads it into the warehouse and `rnnsweep diagnose` labels it. Each module
imports its tool at the top: import the one you use (its package comes with the `test` extra).
"""
