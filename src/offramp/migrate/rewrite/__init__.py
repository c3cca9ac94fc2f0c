"""``offramp migrate``: rewrite an app so that configuration alone points it at offramp."""
