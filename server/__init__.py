"""farz server: ingest from devices, per-site aggregates, live dashboard, city API (JSON, CSV, NGSI-LD).

Stands alone: imports only its own dependencies (FastAPI, SQLAlchemy, Alembic), never vision, device or training.
"""

__all__: list[str] = []
