"""Finding the evidence: the retrievers (dense, BM25 and their fusion, over a folder index or
PostgreSQL) and the evidence sentences chosen from the passages they return."""
