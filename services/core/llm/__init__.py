"""LLM runtimes shared by the rewriter and the judge: load a causal LM once, generate, score labels.

`hf` runs transformers (CPU or CUDA); `vllm` runs vLLM and is imported only when chosen (the gateway and
the main environment never import vllm). Both give the same two operations: sampled completions for a chat
conversation and next-token log-probabilities of a fixed set of single-token labels for a batch of prompts.
"""
