"""`python -m rnnsweep.service ...` is the `rnnsweep` command."""

from rnnsweep.service.cli import main

main()
