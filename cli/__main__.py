"""``python -m cli``: the ``rag`` command (``cli.main``)."""

from cli.main import main

main()
