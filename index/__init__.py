"""Turn a folder of documents into an on-disk index: load, normalise, chunk, embed, store."""

FORMAT_VERSION = 1
