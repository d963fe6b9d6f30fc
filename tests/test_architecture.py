"""The layout's promises: driver and worker code never mix, and start-up stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(folder: str) -> dict[str, set[str]]:
    found = {}
    for file in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(file.relative_to(ROOT))] = names
    return found


def test_worker_code_never_imports_the_driver_side():
    for file, names in imported_modules("jobs").items():
        for name in names:
            assert not name.startswith(("typer", "duckdb", "rich", "rnnsweep.service")), f"{file} imports {name}"


def test_driver_code_uses_only_the_job_contracts():
    contracts = {
        "rnnsweep.jobs.config",
        "rnnsweep.jobs.shapes",  # which trials can share a pack (pydantic only, no torch)
        "rnnsweep.jobs.metric_log",
        "rnnsweep.jobs.outcome",  # what a worker reports back (pydantic, no torch)
        "rnnsweep.jobs.user_code",  # a grid's factory/entrypoint tried before anything trains (torch only then)
        "rnnsweep.jobs.entry",
        "rnnsweep.jobs.tasks.user_file",
    }
    for file, names in imported_modules("service").items():
        for name in names:
            if name.startswith("rnnsweep.jobs"):
                assert name in contracts, f"{file} imports {name}"


def test_the_cli_starts_without_torch_or_ray():
    probe = "import sys, rnnsweep.service.cli; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_driver_builds_its_ray_task_without_torch():
    probe = "import sys, rnnsweep.jobs.entry, rnnsweep.service.submit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_no_bare_service_or_jobs_package_is_importable():
    probe = "import importlib.util as u; print(u.find_spec('service'), u.find_spec('jobs'))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "None None"


def test_analysis_holds_only_sql():
    assert {p.suffix for p in (ROOT / "analysis").iterdir() if p.is_file()} == {".sql"}
