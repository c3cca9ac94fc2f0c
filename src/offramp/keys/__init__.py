"""API keys: issued, hashed and stored in the ledger database; their limits and budgets."""
