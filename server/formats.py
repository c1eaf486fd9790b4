"""Response formats shared by the read endpoints: JSON by default, CSV on ``format=csv`` or ``Accept: text/csv``."""

from __future__ import annotations

import csv
import io

from fastapi import Request
from fastapi.responses import Response


def wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def csv_text(rows: list[dict[str, object]], columns: list[str]) -> str:
    """``rows`` as CSV with a header of ``columns`` (other keys are left out, missing ones empty)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def csv_response(rows: list[dict[str, object]], columns: list[str]) -> Response:
    return Response(csv_text(rows, columns), media_type="text/csv; charset=utf-8")
