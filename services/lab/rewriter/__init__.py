"""Rewriter: SFT/DPO data from the store, TRL training (SFT, DPO, GRPO on the pipeline reward), evaluation."""
