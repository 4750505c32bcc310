"""Airlock connector for iCloud Mail over IMAP."""
