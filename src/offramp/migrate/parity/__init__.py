"""``offramp parity``: the same prompts against two routes, compared, with reports."""
