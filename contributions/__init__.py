"""Contributions: rate schedules, quotes, payments, the append-only ledger, coverage status."""
