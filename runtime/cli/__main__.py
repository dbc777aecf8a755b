"""``python -m runtime.cli``: the ``trellis`` console script without installing it."""

from runtime.cli.main import main

main()
