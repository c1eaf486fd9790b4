"""``UserError``: an error the person running farz can fix; the CLI prints it as one line with exit code 3."""

from __future__ import annotations

EXIT_BAD_INPUT = 3


class UserError(Exception):
    """An error the person running farz can fix; ``str`` is the one line shown, with what to do."""

    exit_code = EXIT_BAD_INPUT
