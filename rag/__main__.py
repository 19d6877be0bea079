"""``python -m rag``: the ``rag`` command (``cli.main``). An entry script, imported by
no module, so the import graph of the packages stays acyclic."""

from cli.main import main

main()
