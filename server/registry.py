"""Model registry and hard samples: data scientists register models, admins assign them, devices pull
their assigned model and push frames they were unsure about."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth import Principal
from server.deps import PrincipalDep, SessionDep, SettingsDep
from server.formats import jpeg_from_base64
from server.models import Device, HardSample, ModelAssignment, ModelVersion, Site

router = APIRouter(prefix="/api/v1")
SHA = r"^[0-9a-f]{64}$"


class ModelCard(BaseModel):
    """What a model says about itself; ``sha256`` must match the uploaded bytes."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._@:-]+$")
    sha256: str = Field(pattern=SHA)
    classes: list[str] = Field(min_length=1, max_length=1000)
    imgsz: list[int] = Field(min_length=2, max_length=2)
    taxonomy_version: int | None = None
    metrics: dict[str, object] = Field(default_factory=dict)
    task: Literal["detect", "classify"] = "detect"  # an item detector, or a material classifier (assigned and rolled back on its own)


class ModelOut(BaseModel):
    id: int
    name: str
    sha256: str
    size: int
    created: datetime
    card: dict[str, object]


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="model id or sha256")
    site: str | None = None
    device: str | None = None


class AssignedOut(BaseModel):
    id: int
    name: str
    sha256: str
    size: int
    classes: list[str]
    url: str


class SampleDetection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cls: str = Field(alias="class", max_length=64)
    confidence: float = Field(ge=0, le=1)
    xyxy: list[float] = Field(min_length=4, max_length=4)
    probabilities: dict[str, float] | None = Field(default=None, max_length=64)  # the material classifier's, as pre-labels


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(max_length=64)
    sample_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    ts: AwareDatetime
    reason: str = Field(max_length=200)
    model: str = Field(max_length=200)
    width: int = Field(gt=0, le=10000)
    height: int = Field(gt=0, le=10000)
    detections: list[SampleDetection] = Field(max_length=500)
    image_jpeg_b64: str = Field(max_length=4 * 2**20)


class SampleOut(BaseModel):
    id: int
    device_id: str
    ts: datetime
    reason: str
    model: str
    width: int
    height: int
    detections: list[dict[str, object]]
    image_jpeg_b64: str | None = None


def _require(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise HTTPException(403, f"this needs a token with role {' or '.join(roles)}")


def _model_out(m: ModelVersion) -> ModelOut:
    return ModelOut(id=m.id, name=m.name, sha256=m.sha256, size=m.size, created=m.created, card=json.loads(m.card))


@router.post(
    "/models",
    response_model=ModelOut,
    status_code=201,
    summary="Register a model (admin or scientist token)",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def register_model(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    x_farz_model_card: Annotated[str, Header(description="the model card, JSON, base64-encoded")],
) -> ModelOut:
    """Upload the ONNX bytes as the body; the card travels in the ``X-Farz-Model-Card`` header."""
    _require(principal, "admin", "scientist")
    try:
        card = ModelCard.model_validate_json(base64.b64decode(x_farz_model_card, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(422, f"X-Farz-Model-Card: not a base64 JSON model card ({str(exc)[:200]})") from exc
    body = await request.body()
    if not body:
        raise HTTPException(422, "empty body: send the .onnx file's bytes")
    digest = hashlib.sha256(body).hexdigest()
    if digest != card.sha256:
        raise HTTPException(422, f"sha256 of the body is {digest}, the card says {card.sha256}")
    existing = session.execute(select(ModelVersion).where(ModelVersion.sha256 == digest)).scalar_one_or_none()
    if existing is not None:
        return _model_out(existing)
    store = Path(settings.model_dir)
    store.mkdir(parents=True, exist_ok=True)
    path = store / f"{digest}.onnx"
    path.write_bytes(body)
    row = ModelVersion(
        name=card.name, sha256=digest, size=len(body), card=card.model_dump_json(), path=str(path.resolve()), created=datetime.now(UTC)
    )
    session.add(row)
    session.commit()
    return _model_out(row)


@router.get("/models", response_model=list[ModelOut], summary="Registered models, newest first")
def list_models(principal: PrincipalDep, session: SessionDep) -> list[ModelOut]:
    _require(principal, "admin", "scientist", "viewer", "reader")
    return [_model_out(m) for m in session.execute(select(ModelVersion).order_by(ModelVersion.id.desc())).scalars()]


def find_model(session: Session, ref: str) -> ModelVersion:
    row = (
        session.get(ModelVersion, int(ref))
        if ref.isdigit() and len(ref) < 10
        else session.execute(select(ModelVersion).where(ModelVersion.sha256.startswith(ref.lower()))).scalars().first()
    )
    if row is None:
        raise HTTPException(404, f"no registered model {ref!r}")
    return row


def assign(session: Session, model: ModelVersion, site: str | None, device: str | None) -> ModelAssignment:
    """Record an assignment (the newest for a target wins); raises HTTPException for an unknown target."""
    if (site is None) == (device is None):
        raise HTTPException(422, "name exactly one of `site` or `device`")
    if site is not None and session.get(Site, site) is None:
        raise HTTPException(404, f"unknown site {site!r}")
    if device is not None and session.get(Device, device) is None:
        raise HTTPException(404, f"unknown device {device!r}")
    row = ModelAssignment(scope="site" if site else "device", target=site or device, model_id=model.id, created=datetime.now(UTC))
    session.add(row)
    session.commit()
    return row


def task_of(model: ModelVersion) -> str:
    """``detect`` or ``classify``, from the model's card (cards registered before classifiers: detect)."""
    return str(json.loads(model.card).get("task", "detect"))


def _assignments(session: Session, scope: str, target: str | None, task: str) -> list[ModelAssignment]:
    """A target's assignments of models of one task, newest first."""
    rows = (
        session.execute(
            select(ModelAssignment)
            .where(ModelAssignment.scope == scope, ModelAssignment.target == target)
            .order_by(ModelAssignment.id.desc())
        )
        .scalars()
        .all()
    )
    tasks = {
        m.id: task_of(m)
        for m in session.execute(select(ModelVersion).where(ModelVersion.id.in_(sorted({r.model_id for r in rows})))).scalars()
    }
    return [r for r in rows if tasks.get(r.model_id) == task]


def rollback(session: Session, site: str | None, device: str | None, task: str = "detect") -> ModelVersion:
    """Re-assign the model of ``task`` (detector or classifier) that was assigned before the current one;
    raises when there is none. The other task's assignment is left as it is."""
    scope, target = ("site", site) if site else ("device", device)
    rows = _assignments(session, scope, target, task)
    current = rows[0].model_id if rows else None
    previous = next((r.model_id for r in rows if r.model_id != current), None)
    if previous is None:
        kind = "classifier" if task == "classify" else "detector"
        raise HTTPException(409, f"{scope} {target!r} has no earlier {kind} to roll back to")
    model = session.get(ModelVersion, previous)
    assert model is not None
    assign(session, model, site, device)
    return model


@router.post("/models/assign", response_model=ModelOut, summary="Assign a model to a site or a device (admin)")
def post_assign(body: AssignIn, principal: PrincipalDep, session: SessionDep) -> ModelOut:
    _require(principal, "admin")
    model = find_model(session, body.model)
    assign(session, model, body.site, body.device)
    return _model_out(model)


def assigned_model(session: Session, device: Device, task: str = "detect") -> ModelVersion | None:
    """The device's own newest assignment of a model of ``task``, else its site's, else None."""
    for scope, target in (("device", device.id), ("site", device.site_id)):
        rows = _assignments(session, scope, target, task)
        if rows:
            return session.get(ModelVersion, rows[0].model_id)
    return None


@router.get("/devices/{device_id}/model", response_model=AssignedOut | None, summary="The detector a device should run (device token)")
def device_model(device_id: str, request: Request, principal: PrincipalDep, session: SessionDep) -> AssignedOut | None:
    return _assigned_out(device_id, request, principal, session, "detect")


@router.get(
    "/devices/{device_id}/classifier",
    response_model=AssignedOut | None,
    summary="The material classifier a device should run (device token)",
)
def device_classifier(device_id: str, request: Request, principal: PrincipalDep, session: SessionDep) -> AssignedOut | None:
    return _assigned_out(device_id, request, principal, session, "classify")


def _assigned_out(device_id: str, request: Request, principal: Principal, session: Session, task: str) -> AssignedOut | None:
    if principal.role != "device" or principal.device_id != device_id:
        raise HTTPException(403, f"this token may not act for device {device_id!r}")
    device = session.get(Device, device_id)
    model = assigned_model(session, device, task) if device else None
    if model is None:
        return None
    card = json.loads(model.card)
    return AssignedOut(
        id=model.id,
        name=model.name,
        sha256=model.sha256,
        size=model.size,
        classes=card["classes"],
        url=str(request.url_for("model_file", model_id=model.id)),
    )


@router.get(
    "/models/{model_id}/file",
    name="model_file",
    summary="Download a model (its assigned devices, admins, scientists)",
    response_class=FileResponse,
)
def model_file(model_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], principal: PrincipalDep, session: SessionDep) -> FileResponse:
    model = session.get(ModelVersion, model_id)
    if model is None:
        raise HTTPException(404, f"no model {model_id}")
    if principal.role == "device":
        device = session.get(Device, principal.device_id)
        current = assigned_model(session, device, task_of(model)) if device else None
        if current is None or current.id != model.id:
            raise HTTPException(403, "this model is not assigned to this device")
    else:
        _require(principal, "admin", "scientist")
    return FileResponse(model.path, media_type="application/octet-stream", filename=f"{model.name}.onnx")


@router.post("/samples", status_code=201, summary="Upload a hard sample with pre-labels (device token)")
def post_sample(body: SampleIn, principal: PrincipalDep, session: SessionDep) -> dict[str, object]:
    if principal.role != "device" or principal.device_id != body.device_id:
        raise HTTPException(403, f"this token may not write for device {body.device_id!r}")
    image = jpeg_from_base64(body.image_jpeg_b64, "image_jpeg_b64")
    device = session.get(Device, body.device_id)
    assert device is not None
    exists = session.execute(select(HardSample.id).where(HardSample.device_id == device.id, HardSample.sample_id == body.sample_id)).first()
    if exists is None:
        session.add(
            HardSample(
                site_id=device.site_id,
                device_id=device.id,
                sample_id=body.sample_id,
                ts=body.ts.astimezone(UTC),
                reason=body.reason,
                model=body.model,
                width=body.width,
                height=body.height,
                labels=json.dumps([d.model_dump(by_alias=True, exclude_none=True) for d in body.detections]),
                image=image,
            )
        )
        session.commit()
    return {"stored": exists is None}


@router.get("/samples", response_model=list[SampleOut], summary="Hard samples of a site (admin or scientist)")
def list_samples(
    principal: PrincipalDep,
    session: SessionDep,
    site: Annotated[str, Query()],
    with_images: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[SampleOut]:
    _require(principal, "admin", "scientist")
    rows = session.execute(
        select(HardSample).where(HardSample.site_id == site).order_by(HardSample.id).offset(offset).limit(limit)
    ).scalars()
    return [
        SampleOut(
            id=r.id,
            device_id=r.device_id,
            ts=r.ts,
            reason=r.reason,
            model=r.model,
            width=r.width,
            height=r.height,
            detections=json.loads(r.labels),
            image_jpeg_b64=base64.b64encode(r.image).decode() if with_images else None,
        )
        for r in rows
    ]
