"""The HTTP API: routes, request and response models, problems, API keys, limits, idempotency keys,
readiness and the OpenAPI document."""
