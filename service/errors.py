"""Errors a user can fix. The CLI prints them as they are (one line each) and exits non-zero;
anything else is a bug and keeps its traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unusable environment, described in one actionable line."""

    exit_code = 2


class GridError(UserError):
    """Every problem found in a grid file, one `file: key.path: problem` line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


class WarehouseBusy(UserError):
    """Another process holds the warehouse's write lock."""

    exit_code = 3
