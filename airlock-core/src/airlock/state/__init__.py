"""The daemon's durable state: one SQLite database (requests, sessions, TOTP replay
and lockout, budgets, the audit anchor).
"""
