"""Airlock connector for Gmail: IMAP with Gmail's search (X-GM-RAW) and labels."""
