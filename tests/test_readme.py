"""The README is the front door: it must stay true to the code and to CI."""

from __future__ import annotations

import re
from pathlib import Path

from rnnsweep.service.grid_keys import SECTIONS
from tests.test_cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_test_command_is_what_ci_runs():
    block = re.search(r"```bash\n(.*?)```", README, re.DOTALL)[1]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2, "the README promises two commands on a fresh machine"
    install_and_quickstart, tests = commands
    assert "rnnsweep submit examples/quickstart.toml" in install_and_quickstart
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_command_has_an_example_in_the_readme():
    for command in COMMANDS:
        assert re.search(rf"^rnnsweep {command}\b", README, re.MULTILINE), (
            f"README lacks an example of `rnnsweep {command}`"
        )


def test_every_grid_key_is_documented():
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            assert f"`{section}.{key}`" in README, f"README's grid.toml table lacks {section}.{key}"


def test_every_example_grid_is_valid():
    from rnnsweep.service.spec import load_grid

    for grid in (ROOT / "examples").glob("*.toml"):
        assert load_grid(grid).trials
