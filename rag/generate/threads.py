"""How the model libraries' threads wait for each other.

torch and llama.cpp both run their threads with OpenMP, and in one process they share one
OpenMP runtime (torch's wheel ships the ``libgomp.so.1`` that llama.cpp then links to). By
default its threads spin at every barrier before they sleep. On two cores shared with
another program, a spinning thread burns the time slice its partner needs: with the
default model, the first token took 1.8 times as long and decoding ran 6 times slower
than with passive waiting (``scripts/first_token.py``, docs/benchmarks.md). The runtime
reads the policy once, when the first of the two libraries loads, so it is set before
any model loads; a value in the environment wins.
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"


def passive_waiting() -> bool:
    """Ask OpenMP to put waiting threads to sleep (``OMP_WAIT_POLICY=PASSIVE``) unless
    the environment says otherwise. False when an OpenMP runtime is already loaded in
    this process (the setting then applies from the next process on)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    return not any(m in sys.modules for m in ("torch", "llama_cpp"))
