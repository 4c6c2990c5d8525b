"""``python -m impbench.cli``: the ``impbench`` command."""

from impbench.cli import main

main()
