"""`rnnsweep report`: one self-contained HTML file, checked as text and rendered in a real
headless Chromium (Debian's; the test is skipped with a reason where it is not installed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.importer import import_runs
from rnnsweep.service.report_html import build_report, log_ticks
from tests.test_diagnose import EXPECTED, write_logs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "wh.duckdb"
    import_runs(path, *write_logs(tmp_path), sweep="logs")
    return path


def test_the_report_is_self_contained_and_shows_every_run(warehouse):
    page = build_report(warehouse, "logs")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page), "the report must work offline"
    assert "<script" not in page
    for run in EXPECTED:
        assert f"logs:{run}" in page
    assert "Label by lr × weight_decay" in page  # the heat map over the two main axes
    for label in set(EXPECTED.values()):
        assert f"{label} · " in page  # one curve panel per label present
    assert page.count("<polyline") == 2 * len(EXPECTED)  # a training and a validation curve per run
    assert "set optimizer.betas = [0.9, 0.999] (beta1 is 0.5)" in page  # fixes are in the table


def test_report_command_and_overrides(warehouse, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        app, ["report", "logs", "-o", str(out), "-w", str(warehouse), "--set", "overfit_val_rise=5"]
    )
    assert result.exit_code == 0 and "it works offline" in result.stderr
    assert "overfitting" not in out.read_text().split("<h2>Runs</h2>")[1]  # the override reached the labels
    missing = CliRunner().invoke(app, ["report", "nope", "-o", str(out), "-w", str(warehouse)])
    assert missing.exit_code == 2 and "no sweep named 'nope'" in missing.stderr


def test_log_axis_ticks():
    assert log_ticks(-3.2, 0.1) == [0.001, 0.01, 0.1, 1.0]
    assert log_ticks(-0.9, 0.05) == [0.2, 0.5, 1.0]
    assert log_ticks(-0.25, -0.15) == [0.6, 0.7]  # narrower than a 1-2-5 step: linear ticks


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_the_report_renders_in_headless_chromium(warehouse, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(build_report(warehouse, "logs"))
    profile = tmp_path / "profile"

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [CHROMIUM, *HEADLESS, f"--user-data-dir={profile}", *args, page.as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    dom = run("--dump-dom").stdout
    # the browser parsed it into the same document: every run row, every label panel's SVG
    assert dom.count("<tr>") >= len(EXPECTED) + 1
    assert dom.count("<svg") == len(set(EXPECTED.values()))
    screenshot = tmp_path / "report.png"
    run("--window-size=1280,1600", f"--screenshot={screenshot}")
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1600)
    assert len(data) > 40_000  # a blank page compresses to a few KB; this one has curves, colours and text
