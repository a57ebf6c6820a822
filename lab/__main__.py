"""``python -m lab``: the ``lab`` command (lab clients --parallel runs its cells this way)."""

from lab.cli import main

main()
