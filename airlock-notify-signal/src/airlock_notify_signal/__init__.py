"""Airlock notifier for Signal (signal-cli-rest-api): prompts answered by quote-replies."""
