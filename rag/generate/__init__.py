"""Generating the reply: the Generator protocol and the backends (llama.cpp and transformers
in this process, a served model over HTTP), the models they load, the prompts, the prompt
cache and the line in front of the model."""
