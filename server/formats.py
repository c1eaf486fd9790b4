"""Response formats shared by the read endpoints: JSON by default, CSV on ``format=csv`` or ``Accept: text/csv``."""

from __future__ import annotations

import base64
import binascii
import csv
import io

from fastapi import HTTPException, Request
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


def jpeg_from_base64(text: str, field: str, max_bytes: int | None = None) -> bytes:
    """The JPEG image in base64 ``text``; a 422 naming ``field`` when it is not one (or larger than ``max_bytes``)."""
    try:
        image = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise HTTPException(422, f"{field}: not base64") from None
    if not image.startswith(b"\xff\xd8"):
        raise HTTPException(422, f"{field}: not a JPEG image")
    if max_bytes is not None and len(image) > max_bytes:
        raise HTTPException(422, f"{field}: larger than {max_bytes} bytes")
    return image
