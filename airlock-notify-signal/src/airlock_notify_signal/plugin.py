"""Airlock plugin hooks of airlock-notify-signal. Only hooks here."""
