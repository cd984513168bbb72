"""The REST API (``/api/v1/`` on each MSP's host): per-user tokens, problem details, idempotent
POSTs and a per-token rate limit, over the same services the pages call. See docs/api.md."""
