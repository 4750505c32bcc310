"""Airlock plugin hooks of airlock-notify-telegram. Only hooks here."""
