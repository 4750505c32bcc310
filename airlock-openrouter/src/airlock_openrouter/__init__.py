"""Airlock connector for OpenRouter: chat and embeddings within an approved budget."""
