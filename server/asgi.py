"""ASGI entry point for ``uvicorn server.asgi:app`` (used by ``farz server run`` and its workers).

Settings come from the file named by ``FARZ_SERVER_CONFIG`` (optional) and ``FARZ_*`` variables.
"""

from __future__ import annotations

import os
from pathlib import Path

from server.app import create_app
from server.settings import Settings

_config = os.environ.get("FARZ_SERVER_CONFIG")
app = create_app(Settings.load(Path(_config) if _config else None))
