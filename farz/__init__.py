"""The ``farz`` command line, the top floor: subcommands per role over training, device, vision and server.

May import every package; no package imports it. ``farz bench`` dispatches to ``bench``.
"""

__all__: list[str] = []
