"""farz device side: frame sources, count runs, settings files (and later the agent, outbox, uploader)."""

__all__: list[str] = []
