"""Fitting the graded decision (rag/grounding/decision.json): the questions and their one
model pass each, the fit, and its report (``rag fit-decision``)."""
