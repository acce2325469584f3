"""Retriever: training data from the store, encoder fine-tuning, retrieval evaluation and its plots."""
