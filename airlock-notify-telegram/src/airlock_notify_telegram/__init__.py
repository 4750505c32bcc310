"""Airlock notifier for Telegram: prompts from a bot, answered by replying with a code."""
