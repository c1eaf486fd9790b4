"""``/api/v1/reviews``: what devices kept for review, labelled by people, and what those labels say.

Devices send the counted tracks they kept (a random share of all, and the ones the classifier was unsure
of) with up to three crops each. Reviewers (site-scoped tokens) and admins label them one at a time; a share
of items (``review_double_share``) is shown to two reviewers, and a disagreement goes to a third. Scientists
export the labelled crops; anyone who reads the site sees how far its counts can be trusted, from the
*random* items only (``server.trust``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import trust
from server.auth import Principal
from server.deps import PrincipalDep, SessionDep, SettingsDep, site_for
from server.formats import jpeg_from_base64
from server.models import Device, ReviewCrop, ReviewItem, ReviewLabel, Site
from server.schemas import CLASS_NAME, ID

router = APIRouter(prefix="/api/v1")

NOT_ITEM = "not_item"  # a part of an item, two items, the belt
UNKNOWN = "unknown"  # the reviewer can't tell
MAX_LABELS = 3
MAX_CROP_BYTES = 512 * 1024
MANIFEST_FIELDS = [
    "file",
    "class",
    "item",
    "device",
    "track_id",
    "line",
    "ts",
    "kind",
    "counted",
    "detector",
    "classifier",
    "reviewers",
    "labelled",
]
ItemId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


class ReviewIn(BaseModel):
    """One counted track a device kept for review."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(pattern=ID)
    item_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    ts: AwareDatetime
    line: str = Field(pattern=ID)
    track_id: int = Field(ge=0, le=2**62)
    counted: str = Field(pattern=CLASS_NAME, description="the class the device counted the item as")
    probabilities: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(max_length=64, description="voted probability per class")
    kind: Literal["random", "unsure"]
    detector: str = Field(max_length=200)
    classifier: str = Field(max_length=200)
    crops: list[str] = Field(min_length=1, max_length=3, description="JPEG crops, base64")


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(pattern=CLASS_NAME, description=f"a material class, {NOT_ITEM!r} or {UNKNOWN!r}")


def _site_of_review(session: Session, principal: Principal, site_id: str | None) -> Site:
    """The site a reviewer (their own) or an admin asked for; 403/404/422 otherwise."""
    return site_for(session, principal, site_id, principal.may_review, "review")


def needs_two(item_key: str, share: float) -> bool:
    """Whether an item is one of the ``share`` shown to two reviewers (decided by its key, so stable)."""
    return int.from_bytes(hashlib.sha256(item_key.encode()).digest()[:4], "big") / 2**32 < share


@router.post("/reviews", status_code=201, summary="Send a counted track kept for review, with its crops (device token)")
def post_review(body: ReviewIn, principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> dict[str, object]:
    if principal.role != "device" or principal.device_id != body.device_id:
        raise HTTPException(403, f"this token may not write for device {body.device_id!r}")
    unknown = sorted({body.counted, *body.probabilities} - set(settings.classes))
    if unknown:
        raise HTTPException(422, f"classes {unknown} are not in the server's taxonomy {list(settings.classes)}")
    images = [jpeg_from_base64(text, f"crops[{k}]", MAX_CROP_BYTES) for k, text in enumerate(body.crops)]
    device = session.get(Device, body.device_id)
    assert device is not None
    found = session.execute(select(ReviewItem.id).where(ReviewItem.device_id == device.id, ReviewItem.item_id == body.item_id)).first()
    if found is not None:
        return {"stored": False, "id": found[0]}
    item = ReviewItem(
        site_id=device.site_id,
        device_id=device.id,
        item_id=body.item_id,
        ts=body.ts.astimezone(UTC),
        line=body.line,
        track_id=body.track_id,
        counted=body.counted,
        probabilities=json.dumps({c: round(float(p), 4) for c, p in body.probabilities.items()}),
        kind=body.kind,
        detector=body.detector,
        classifier=body.classifier,
        needed=2 if needs_two(f"{device.id}/{body.item_id}", settings.review_double_share) else 1,
        status="open",
        created=datetime.now(UTC),
    )
    session.add(item)
    session.flush()
    session.add_all(ReviewCrop(item=item.id, image=image) for image in images)
    session.commit()
    return {"stored": True, "id": item.id}


def _crops(session: Session, item_id: int) -> list[str]:
    rows = session.execute(select(ReviewCrop.image).where(ReviewCrop.item == item_id).order_by(ReviewCrop.id)).scalars()
    return ["data:image/jpeg;base64," + base64.b64encode(image).decode() for image in rows]


@router.get("/reviews/next", summary="The next items for this reviewer to label, oldest first (reviewer or admin)")
def next_items(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    site: str | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    after: Annotated[int, Query(ge=0, description="only items with a higher id (the page asks for more while it shows some)")] = 0,
) -> dict[str, object]:
    row = _site_of_review(session, principal, site)
    mine = select(ReviewLabel.item).where(ReviewLabel.token_id == principal.token_id)
    labels = func.count(ReviewLabel.id)
    stmt = (
        select(ReviewItem, labels)
        .outerjoin(ReviewLabel, ReviewLabel.item == ReviewItem.id)
        .where(ReviewItem.site_id == row.id, ReviewItem.status == "open", ReviewItem.id > after, ReviewItem.id.not_in(mine))
        .group_by(ReviewItem.id)
        .order_by(labels.desc(), ReviewItem.id)  # a second opinion first: agreement figures need them
        .limit(limit)
    )
    items = [
        {
            "id": item.id,
            "ts": item.ts.isoformat(),
            "line": item.line,
            "guess": item.counted,
            "probabilities": json.loads(item.probabilities),
            "crops": _crops(session, item.id),
        }
        for item, _ in session.execute(stmt).all()
    ]
    return {"site": row.id, "classes": list(settings.classes), "labels": [*settings.classes, NOT_ITEM, UNKNOWN], "items": items}


def settle(session: Session, item: ReviewItem) -> None:
    """Set an item's status and final label from its labels: done when it has ``needed`` labels and more
    than half of them agree; otherwise open for another label, up to three; contested after three."""
    labels = [label for (label,) in session.execute(select(ReviewLabel.label).where(ReviewLabel.item == item.id)).all()]
    top, votes = Counter(labels).most_common(1)[0] if labels else ("", 0)
    if len(labels) >= item.needed and votes * 2 > len(labels):
        item.status, item.final = "done", top
    elif len(labels) >= MAX_LABELS:
        item.status, item.final = "contested", None
    else:
        item.status, item.final = "open", None


def _label_of(session: Session, item: ReviewItem, principal: Principal) -> ReviewLabel | None:
    mine = select(ReviewLabel).where(ReviewLabel.item == item.id, ReviewLabel.token_id == principal.token_id)
    return session.execute(mine).scalar_one_or_none()


def _item_to_label(session: Session, principal: Principal, item_id: int) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise HTTPException(404, f"no review item {item_id}")
    _site_of_review(session, principal, item.site_id)
    return item


@router.post("/reviews/{item_id}/label", summary="Label an item (reviewer or admin); labelling it again replaces your label")
def post_label(item_id: ItemId, body: LabelIn, principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> dict[str, object]:
    item = _item_to_label(session, principal, item_id)
    allowed = (*settings.classes, NOT_ITEM, UNKNOWN)
    if body.label not in allowed:
        raise HTTPException(422, f"label {body.label!r}: one of {', '.join(allowed)}")
    mine = _label_of(session, item, principal)
    if mine is None and item.status != "open":
        raise HTTPException(409, f"item {item_id} has all the labels it needs")
    now = datetime.now(UTC)
    if mine is None:
        session.add(ReviewLabel(item=item.id, label=body.label, token_id=principal.token_id or 0, reviewer=principal.who, created=now))
    else:
        mine.label, mine.created = body.label, now
    try:
        session.flush()
    except IntegrityError:  # the same reviewer's label of this item, sent twice at once: the first one stands
        session.rollback()
        raise HTTPException(409, f"item {item_id}: your label is being saved already") from None
    settle(session, item)
    session.commit()
    return {"id": item.id, "label": body.label, "status": item.status, "final": item.final}


@router.delete("/reviews/{item_id}/label", summary="Take back your label of an item (undo; reviewer or admin)")
def delete_label(item_id: ItemId, principal: PrincipalDep, session: SessionDep) -> dict[str, object]:
    item = _item_to_label(session, principal, item_id)
    mine = _label_of(session, item, principal)
    if mine is None:
        raise HTTPException(404, f"you have not labelled item {item_id}")
    session.delete(mine)
    session.flush()
    settle(session, item)
    session.commit()
    return {"id": item.id, "status": item.status}


def agreement(session: Session, site_id: str) -> dict[str, object]:
    """How often two reviewers of the same item gave the same label (their first two labels), Wilson 90 %.
    Counted in the database: one row back however many labels the site has."""
    ranked = (
        select(
            ReviewLabel.item,
            ReviewLabel.label,
            func.row_number().over(partition_by=ReviewLabel.item, order_by=ReviewLabel.id).label("nth"),
        )
        .join(ReviewItem, ReviewItem.id == ReviewLabel.item)
        .where(ReviewItem.site_id == site_id)
        .cte("ranked")
    )
    first, second = ranked.alias("first_label"), ranked.alias("second_label")
    items, agreed = session.execute(
        select(func.count(), func.coalesce(func.sum(case((first.c.label == second.c.label, 1), else_=0)), 0))
        .select_from(first.join(second, first.c.item == second.c.item))
        .where(first.c.nth == 1, second.c.nth == 2)
    ).one()
    return {"items": int(items), "agreed": int(agreed), "share": trust.wilson(int(agreed), int(items)).to_json()}


@router.get("/reviews/status", summary="The review queue of a site: waiting, done, contested, your labels, agreement (reviewer or admin)")
def review_status(principal: PrincipalDep, session: SessionDep, site: str | None = None) -> dict[str, object]:
    row = _site_of_review(session, principal, site)
    by_status = dict(
        session.execute(select(ReviewItem.status, func.count()).where(ReviewItem.site_id == row.id).group_by(ReviewItem.status)).all()
    )
    yours = session.execute(select(func.count()).select_from(ReviewLabel).where(ReviewLabel.token_id == principal.token_id)).scalar_one()
    return {
        "site": row.id,
        "reviewer": principal.who,
        "open": by_status.get("open", 0),
        "done": by_status.get("done", 0),
        "contested": by_status.get("contested", 0),
        "yours": yours,
        "agreement": agreement(session, row.id),
    }


def _classifier_of(session: Session, site_id: str, classifier: str | None) -> tuple[str | None, list[dict[str, object]]]:
    """The classifier asked for (default: the one of the site's newest reviewed random item) and every
    classifier with reviewed random items on the site, newest first."""
    newest = func.max(ReviewItem.ts)
    rows = session.execute(
        select(ReviewItem.classifier, func.count(), newest)
        .where(ReviewItem.site_id == site_id, ReviewItem.kind == "random", ReviewItem.status == "done")
        .group_by(ReviewItem.classifier)
        .order_by(newest.desc())
    ).all()
    listed = [{"classifier": c, "reviewed": n} for c, n, _ in rows]
    return classifier or (rows[0][0] if rows else None), listed


def reviewed_pairs(session: Session, site_id: str, classifier: str | None, classes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(reviewers' class, counted class) of the site's randomly sampled, reviewed items of ``classifier``;
    items labelled not-an-item or can't-tell, or counted outside ``classes``, are left out."""
    rows = session.execute(
        select(ReviewItem.final, ReviewItem.counted).where(
            ReviewItem.site_id == site_id, ReviewItem.kind == "random", ReviewItem.status == "done", ReviewItem.classifier == classifier
        )
    ).all()
    return [(str(f), str(c)) for f, c in rows if f in classes and c in classes]


@router.get(
    "/reviews/accuracy",
    summary="How sure a site's counts are: accuracy, recall and precision with 90 % intervals, from randomly sampled reviewed items",
)
def get_accuracy(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    site: str | None = None,
    classifier: Annotated[str | None, Query(max_length=200, description="a classifier id (default: the newest one reviewed)")] = None,
) -> dict[str, object]:
    row = _site_for_figures(session, principal, site)
    chosen, listed = _classifier_of(session, row.id, classifier)
    pairs = reviewed_pairs(session, row.id, chosen, settings.classes)
    figures = trust.reviewed_accuracy(pairs, settings.classes).to_json()
    return {
        "site": row.id,
        "classifier": chosen,
        "classifiers": listed,
        "sample": "randomly sampled counted items only, as reviewers labelled them; 90 % Wilson intervals",
        **figures,
        "agreement": agreement(session, row.id),
    }


def _site_for_figures(session: Session, principal: Principal, site_id: str | None) -> Site:
    """A site whose trust figures this token may see: who reads its counts, and its scientists (reviewers see
    the crops they label, nothing else)."""

    def may(site: str) -> bool:
        return principal.may_read(site) or (principal.role == "scientist" and principal.site_id in (None, site))

    return site_for(session, principal, site_id, may)


def site_confusion(session: Session, site_id: str, classes: tuple[str, ...]) -> tuple[str | None, trust.ReviewedAccuracy]:
    """The confusion matrix of the site's newest reviewed classifier (what ``adjusted=true`` corrects with)."""
    chosen, _ = _classifier_of(session, site_id, None)
    return chosen, trust.reviewed_accuracy(reviewed_pairs(session, site_id, chosen, classes), classes)


@router.get(
    "/reviews/export",
    summary="The labelled crops of a site as a zip: one folder per class and manifest.csv (scientist or admin)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_reviews(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    site: Annotated[str, Query(pattern=ID)],
    since: AwareDatetime | None = None,
) -> Response:
    if principal.role not in ("scientist", "admin") or principal.site_id not in (None, site):
        raise HTTPException(403, "exporting reviews needs a scientist or admin token of this site")
    if session.get(Site, site) is None:
        raise HTTPException(404, f"no site {site!r}")
    stmt = select(ReviewItem).where(ReviewItem.site_id == site, ReviewItem.status == "done", ReviewItem.final.in_(settings.classes))
    if since is not None:
        stmt = stmt.where(ReviewItem.ts >= since)
    buffer = tempfile.SpooledTemporaryFile(max_size=32 * 2**20)  # noqa: SIM115 - closed by the response once sent; spills to disk
    manifest = io.StringIO()
    fields = MANIFEST_FIELDS
    writer = csv.DictWriter(manifest, fields, lineterminator="\n")
    writer.writeheader()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for item in session.execute(stmt.order_by(ReviewItem.id)).scalars():
            labels = session.execute(select(ReviewLabel).where(ReviewLabel.item == item.id).order_by(ReviewLabel.id)).scalars().all()
            key = f"{item.device_id}-{item.item_id}"
            images = session.execute(select(ReviewCrop.image).where(ReviewCrop.item == item.id).order_by(ReviewCrop.id)).scalars()
            for k, image in enumerate(images):
                name = f"{item.final}/{key}-c{k}.jpg"
                archive.writestr(name, image)
                writer.writerow(
                    {
                        "file": name,
                        "class": item.final,
                        "item": key,
                        "device": item.device_id,
                        "track_id": item.track_id,
                        "line": item.line,
                        "ts": item.ts.isoformat(),
                        "kind": item.kind,
                        "counted": item.counted,
                        "detector": item.detector,
                        "classifier": item.classifier,
                        "reviewers": "; ".join(label.reviewer for label in labels),
                        "labelled": max(label.created for label in labels).isoformat(),
                    }
                )
        archive.writestr("manifest.csv", manifest.getvalue())
    headers = {"Content-Disposition": f'attachment; filename="{site}-reviews.zip"'}
    buffer.seek(0)

    def chunks() -> Iterator[bytes]:
        with buffer:
            while chunk := buffer.read(2**20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/zip", headers=headers)
