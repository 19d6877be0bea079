"""Holding the reply to its evidence: every sentence verified against what it cites, the
draft, the graded decision (answer, caution or refuse), disagreeing sources, the screen
for documents that address the assistant, and where a citation comes from."""
