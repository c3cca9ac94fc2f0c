"""The usage ledger: one record per request, in SQLite (default) or PostgreSQL."""
