"""Argument-parser helpers the command modules share."""

from __future__ import annotations

import argparse
from typing import Any

SubParsers = Any  # argparse's private _SubParsersAction


def add_command(sub: SubParsers, name: str, *, help: str, description: str | None = None, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand listed with its one-line ``help``; its own ``--help`` opens with ``description``, else that line."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description or _sentence(help), **kwargs)
    return parser


def _sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter and a closing full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", ")", "!", "?")) else text + "."
