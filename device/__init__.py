"""The edge agent: frame sources, count runs, config, SQLite outbox, uploader, heartbeats, live view, model updates.

One floor above ``vision`` (which it may import); never ``training``, ``farz``, ``server`` or ``bench``.
"""

__all__: list[str] = []
