"""Embedding text: the Embedder protocol, the sentence-transformers backend, and the ONNX
export and its quantization."""
