"""The ``rag`` command: one typer app (``cli.main``) over the library (``index``, ``rag``,
``eval``) and the servers (``serve``, ``ui``), one module per group of commands. No
library module imports a shell."""
