"""Where the tool keeps its data (indexes, caches, converted models)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path

# the sample corpus beside the package, in a source checkout
BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "data" / "nhs"


def data_home() -> Path:
    """``$RAG_HOME``, else this user's data folder for cited-rag (``platformdirs``): on
    Linux ``$XDG_DATA_HOME/cited-rag``, else ``~/.local/share/cited-rag``."""
    env = os.environ.get("RAG_HOME")
    if env:
        return Path(env).expanduser()
    return user_data_path("cited-rag", appauthor=False)
