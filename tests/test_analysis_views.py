"""The analysis views as relations: each file's header names its view and its grain, and on a
real warehouse (the development corpus, imported, plus three runs for the rules it never fires)
the grain holds: unique and never null. Later layers read only staging, never the raw tables,
and only views built before them; every rule yields the same columns; every threshold a rule
reads exists and is compared against."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnnsweep.service.diagnose import set_thresholds
from rnnsweep.service.importer import import_runs
from rnnsweep.service.query import read_only
from rnnsweep.service.warehouse import analysis_dir
from tests.test_early_stop import constant_inputs, pathology_trial, trained_into

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(analysis_dir().glob("*.sql"))
RULE_COLUMNS = [
    ("run_id", "VARCHAR"),
    ("label", "VARCHAR"),
    ("priority", "INTEGER"),
    ("confidence", "VARCHAR"),
    ("onset_step", "BIGINT"),
    ("metric", "VARCHAR"),
    ("value", "DOUBLE"),
    ("threshold", "DOUBLE"),
    ("evidence", "VARCHAR"),
]
RULE_IMPORTS = ("signals", "threshold_values", "inputs")  # the CTEs of 70_rule_hits.sql that are not rules


def code(text: str) -> str:
    """SQL without comments and string literals: what is left names relations and columns."""
    return re.sub(r"'(?:[^']|'')*'", "''", re.sub(r"--[^\n]*", "", text))


def view_name(text: str) -> str:
    return re.search(r"create or replace view (\w+) as", text).group(1)


def grain_keys(text: str) -> list[str]:
    found = re.match(r"-- \w+\n-- grain: one row per .+ \(([\w, ]+)\)\n", text)
    assert found, "line 2 must read: -- grain: one row per ... (key, columns)"
    return [key.strip() for key in found.group(1).split(",")]


def ctes(text: str) -> list[str]:
    return re.findall(r"(?m)^(?:with )?(\w+) as \(", code(text))


def reads(text: str) -> set[str]:
    return set(re.findall(r"\b(?:from|join)\s+([a-z_]\w*)", code(text))) - set(ctes(text))


def curve(values, every: int = 50) -> list[tuple[int, float]]:
    return [(every * (i + 1), float(v)) for i, v in enumerate(values)]


# The corpus never fires these rules: a trial the early stop ended, accuracy-only logs whose
# validation accuracy fell while train accuracy held, and a 4-class log that starts after its
# loss blew up, never near chance (ln 4 = 1.39) again (and the fixture adds another: a trial the
# pathology early stop ended).
EXTRA = {
    "wrecked": {
        "train_loss": curve([40.0 + (i % 3) for i in range(20)]),
        "val_loss": curve([35.0 + (i % 4) for i in range(20)]),
        "val_acc": curve([0.25] * 20),
    },
    "stopped": {
        "train_loss": curve([1.0 - 0.04 * i if i < 10 else 0.6 + 0.3 * (i - 10) for i in range(20)]),
        "val_loss": curve([1.0] * 20),
        "early_stopped": [(700, 1.0)],
    },
    "acc_only": {
        "train_loss": curve([1.3 * 0.78**i for i in range(20)]),
        "train_acc": curve([min(0.99, 0.3 + 0.1 * i) for i in range(20)]),
        "val_acc": curve([0.3 + 0.05 * i if i < 10 else 0.8 - 0.03 * (i - 10) for i in range(20)]),
    },
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("views")
    path = folder / "wh.duckdb"
    import_runs(path, CORPUS / "metrics.parquet", CORPUS / "params.parquet", "corpus")
    rows = [
        {"run_id": run, "step": step, "epoch": step // 100, "metric": metric, "value": value}
        for run, series in EXTRA.items()
        for metric, points in series.items()
        for step, value in points
    ]
    pq.write_table(pa.Table.from_pylist(rows), folder / "extra.parquet")
    params = {"run_id": list(EXTRA), "task": ["classification"] * 3, "n_classes": [4] * 3, "lr": [0.01] * 3}
    pq.write_table(pa.table(params), folder / "extra_params.parquet")
    import_runs(path, folder / "extra.parquet", folder / "extra_params.parquet", "extra")
    # and one trial the pathology early stop ended, trained here: its stop reason names its label
    stopped = pathology_trial(task="file", data={"path": str(constant_inputs(folder))})
    trained_into(path, folder / "logs", stopped)
    # and a follow-up of it, as `rnnsweep fix` writes one (same inputs: it cannot be fixed)
    follow_up = pathology_trial(task="file", data={"path": str(constant_inputs(folder))}, fixes=stopped.run_id)
    trained_into(path, folder / "logs", follow_up.model_copy(update={"sweep": "t-fix"}))
    set_thresholds(path, {"overfit_val_rise": 0.15}, [])  # the default: a row for staging_threshold_overrides
    return path


def test_each_file_is_one_view_named_in_its_header():
    for file in FILES:
        text = file.read_text()
        assert text.splitlines()[0] == f"-- {view_name(text)}", file.name
        assert file.stem.split("_", 1)[1] == view_name(text), file.name
        assert text.count("create or replace view") == 1, file.name
        grain_keys(text)


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.stem)
def test_the_grain_is_unique_and_not_null(warehouse, file):
    text = file.read_text()
    keys = grain_keys(text)
    with read_only(warehouse) as con:
        rows, distinct, nulls = con.sql(
            f"select count(*), count(distinct ({', '.join(keys)})), count(*) filter (where {' or '.join(f'{k} is null' for k in keys)})"
            f" from {view_name(text)}"
        ).fetchall()[0]
    assert rows > 0, "no rows: the grain was not tested"
    assert (distinct, nulls) == (rows, 0), (keys, rows, distinct, nulls)


def test_only_staging_reads_the_raw_tables_and_each_view_reads_earlier_ones(warehouse):
    with read_only(warehouse) as con:
        raw = {name for (name,) in con.sql("select table_name from duckdb_tables()").fetchall()}
    built: set[str] = set()
    for file in FILES:
        text = file.read_text()
        read = reads(text)
        if file.stem.split("_")[1] == "staging":
            assert len(read) == 1 and read <= raw, (file.name, read)
        else:
            assert read <= built, (file.name, read - built)
        built.add(view_name(text))


def rule_sql(name: str) -> str:
    """One rule CTE of rule_hits on its own: the view's query, ending in that CTE instead of final."""
    text = (analysis_dir() / "70_rule_hits.sql").read_text()
    query = text.split("create or replace view rule_hits as\n", 1)[1].rstrip().removesuffix(";")
    assert query.endswith("select * from final")
    return query.removesuffix("select * from final") + f"select * from {name}"


def rules() -> list[str]:
    names = ctes((analysis_dir() / "70_rule_hits.sql").read_text())
    assert names[: len(RULE_IMPORTS)] == list(RULE_IMPORTS) and names[-1] == "final"
    return names[len(RULE_IMPORTS) : -1]


def test_every_rule_is_in_the_union_and_yields_the_rule_columns(warehouse):
    text = code((analysis_dir() / "70_rule_hits.sql").read_text())
    union = re.findall(r"select \* from (\w+)", text.split("final as (", 1)[1].split("\n)", 1)[0])
    assert sorted(union) == sorted(rules())
    priorities = {}
    with read_only(warehouse) as con:
        for name in rules():
            columns = [(c, t) for c, t, *_ in con.sql(f"describe {rule_sql(name)}").fetchall()]
            assert columns == RULE_COLUMNS, name
            found = con.sql(f"select distinct priority from ({rule_sql(name)})").fetchall()
            assert len(found) == 1, f"{name} fires nowhere, or with more than one priority: {found}"
            priorities[name] = found[0][0]
    assert len(set(priorities.values())) == len(priorities), priorities
    assert max(priorities, key=priorities.get) == "healthy"


def test_a_log_that_starts_after_its_blow_up_is_diverged_never_constant(warehouse):
    with read_only(warehouse) as con:
        [(label, evidence)] = con.sql("select label, evidence from diagnosis where run_id = 'extra:wrecked'").fetchall()
    assert label == "diverged" and "of predicting nothing about the input" in evidence, evidence


def test_every_threshold_is_documented_read_by_name_and_compared(warehouse):
    with read_only(warehouse) as con:
        thresholds = dict(con.sql("select name, description from thresholds").fetchall())
    others = [f.read_text() for f in FILES if view_name(f.read_text()) != "thresholds"]
    for text in others:
        for listed in re.findall(r"on name in \(([^)]*)\)", text):
            assert set(re.findall(r"'(\w+)'", listed)) <= set(thresholds), listed
    for name, description in thresholds.items():
        assert len(description) > 30, name
        assert any(re.search(rf"\b{name}\b", code(text)) for text in others), f"{name} is never compared against"


def test_fixes_agree_with_the_rule_that_chose_their_label(warehouse):
    with read_only(warehouse) as con:
        rows = con.sql("select label, onset_step, evidence, fix from diagnosis").fetchall()
    assert {label for label, *_ in rows} == {"healthy", "overfitting", "l2_collapsed", "diverged", "constant_output"}
    for label, onset_step, evidence, fix in rows:
        if label == "overfitting":
            assert fix.startswith(f"stop at step {onset_step}, "), (onset_step, fix)
        if label == "diverged":
            assert ("became NaN/Inf" in evidence) == fix.startswith("check the inputs for NaN/Inf"), (evidence, fix)
        assert (fix is None) == (label == "healthy")
