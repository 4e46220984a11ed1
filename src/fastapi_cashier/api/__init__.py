"""HTTP layer: the payments router, its routes and schemas, auth, problem+json errors, Idempotency-Key."""
