"""The HTTP API (``casework serve``): every CLI operation over HTTP for programs in any
language, with bearer tokens, problem details, webhooks' administration, health and
metrics. Needs the ``server`` extra (FastAPI, uvicorn, prometheus-client)."""
