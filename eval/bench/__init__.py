"""``rag bench``: speed and memory of the pipeline, each measured beside the raw component
doing the same work in the same run.

Sections (each also reports its peak RSS):
- build: ``build_index`` on real text vs ``SentenceTransformer.encode`` (or the ONNX
  embedder's own ``embed_documents``) on the same chunk texts;
- retrieval, per size: ``HybridRetriever.retrieve`` (query embedding, dense search, BM25,
  fusion) vs raw exact FAISS search of the same query vectors, recall@10 of the dense
  index against exact search, and memory per vector. Sizes are search-only: clustered
  random unit vectors and Zipf texts (``eval.bench.synthetic``), stated as such in the output;
- update: adding documents to a large index vs indexing the same documents alone;
- generation: the pipeline's generator vs raw llama.cpp (``Llama.create_chat_completion``)
  on the same prompt, decoding tokens/s;
- end to end: ``Pipeline.ask`` on NHS gold questions, latency and time to first token.
"""

from eval.bench.generation import bench_end_to_end, bench_generation, bench_prompt_cache
from eval.bench.measure import (
    BenchConfig,
    RandomEmbedder,
    bench_build,
    bench_retrieval,
    bench_update,
    parse_sizes,
    peak_rss,
)
from eval.bench.run import run_bench

__all__ = ["BenchConfig", "RandomEmbedder", "bench_build", "bench_end_to_end",
           "bench_generation", "bench_prompt_cache", "bench_retrieval", "bench_update",
           "parse_sizes", "peak_rss", "run_bench"]
