"""LLM backends: each turns song requests into raw reply texts (see base.py for the contract)."""
