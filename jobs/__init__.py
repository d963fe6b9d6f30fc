"""Worker side: everything that runs inside a Ray task.

Imports torch, pyarrow and numpy; never typer, duckdb or rnnsweep.service. What crosses
the boundary is a frozen `TrialConfig` going in and Arrow metric chunks coming out.
"""
