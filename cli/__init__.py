"""The ``rag`` command: one typer app over the pipeline's commands (``rag.cli``), the web
UI's (``ui.cli``) and the eval's (``eval.cli``). It sits above those packages, so none of
them imports its shells."""
