"""farz server: ingest from devices, per-site aggregates, live dashboard, city API (JSON, CSV, NGSI-LD).

Imports only its own dependencies (FastAPI, SQLAlchemy, Alembic): never vision, torch or onnxruntime.
"""

__all__: list[str] = []
