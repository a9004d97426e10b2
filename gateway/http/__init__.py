"""The HTTP API: routes, request and response models, problems, API keys, limits, idempotency keys,
readiness, the queue's status routes (``queue_routes``) and the OpenAPI document."""
