"""Airlock notifier for Signal (signal-cli-rest-api, or signal-cli's own socket): prompts
answered by quote-replies."""
