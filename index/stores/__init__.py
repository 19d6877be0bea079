"""Where an index is kept: a folder (FAISS or Qdrant for the vectors) or PostgreSQL with
pgvector, behind one VectorStore protocol."""
