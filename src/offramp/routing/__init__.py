"""Routes: a public model name served by an ordered list of deployments (local models or
upstream APIs), with a strategy that orders them, retries with backoff inside one
per-request deadline, fallback to the next deployment, a circuit breaker per deployment,
and the cost of every answer from a versioned price table."""
