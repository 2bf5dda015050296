"""Attachments (附件): the practice licence and the offline approval documents.

The type is decided by the file's first bytes, never by its name or the browser's Content-Type:
only PDF, PNG and JPEG are accepted. Files are stored once per content under
``data_dir/attachments/<sha256[:2]>/<sha256>`` (written to a temporary name, then renamed, so a
reader never sees half a file); every upload is a database row tied to the submission version it
was uploaded for. Rows are marked removed, never deleted: each submitted version keeps its files.
A file whose content (SHA-256) is already among the application's current files is refused.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.errors import BadRequest, NotFound
from imsp.qualification.models import Application, Attachment
from imsp.qualification.workflow import ensure_editable

#: 第五章 第 4 步: 上传执业许可证、线下审批文件等附件.
KINDS: Final[dict[str, str]] = {"license": "执业许可证", "approval": "线下审批文件"}

#: Magic bytes → MIME type (ISO 32000 ``%PDF-``; PNG signature; JPEG SOI + marker).
_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
TYPE_LABELS: Final[dict[str, str]] = {
    "application/pdf": "PDF",
    "image/png": "PNG",
    "image/jpeg": "JPG",
}
ACCEPTED: Final = "PDF、JPG、PNG"


def sniff(head: bytes) -> str | None:
    """The MIME type recognised from the first bytes, or ``None`` if not PDF, PNG or JPEG."""
    for magic, mime in _SIGNATURES:
        if head.startswith(magic):
            return mime
    return None


def clean_name(name: str) -> str:
    """The uploaded file's name as shown and offered on download: no directories, no control
    characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip().strip(".")
    return (base or "附件")[-200:]


def path_for(data_dir: Path, sha256: str) -> Path:
    return data_dir / "attachments" / sha256[:2] / sha256


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as received: its bytes and the name the browser gave."""

    name: str
    content: bytes


def check_upload(upload: Upload, *, max_bytes: int) -> str:
    """The MIME type of an acceptable upload; ``BadRequest`` with a field message otherwise."""
    size = len(upload.content)
    if size == 0:
        problem = "请选择要上传的文件（文件为空）"
    elif size > max_bytes:
        problem = f"文件大小 {size_label(size)} 超过上限 {size_label(max_bytes)}，未上传"
    else:
        mime = sniff(upload.content[:16])
        if mime is not None:
            return mime
        problem = f"文件内容不是 {ACCEPTED}（按文件内容识别，与扩展名无关）"
    raise BadRequest(problem, data={"errors": {"file": problem}})


def size_label(n: int) -> str:
    """A size as the hint, the limit message and the browser check all print it (``10 MB``)."""
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f}".removesuffix(".0") + " MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} 字节"


def too_large(max_bytes: int) -> str:
    """The message for a file refused before it reached the page (the request was too large)."""
    return f"文件超过上限 {size_label(max_bytes)}，未上传；请压缩或拆分后重新上传"


def store_file(data_dir: Path, content: bytes) -> str:
    """Write ``content`` under its SHA-256 (once) and return the digest."""
    digest = hashlib.sha256(content).hexdigest()
    target = path_for(data_dir, digest)
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


async def add_attachment(
    session: AsyncSession,
    *,
    app: Application,
    kind: str,
    upload: Upload,
    uploader: str,
    data_dir: Path,
    max_bytes: int,
    now: datetime,
) -> Attachment:
    """Accept one file for ``app`` (which must be editable). Nothing is written when it is refused."""
    ensure_editable(app)
    if kind not in KINDS:
        raise BadRequest("请选择附件类别", data={"errors": {"kind": "请选择附件类别"}})
    mime = check_upload(upload, max_bytes=max_bytes)
    digest = hashlib.sha256(upload.content).hexdigest()
    same = await session.scalar(
        select(Attachment)
        .where(
            Attachment.application_id == app.id,
            Attachment.removed_at.is_(None),
            Attachment.sha256 == digest,
        )
        .limit(1)
    )
    if same is not None:
        problem = (
            f"该文件与已上传的“{same.original_name}”（{KINDS.get(same.kind, same.kind)}）"
            "内容完全相同，无需重复上传"
        )
        raise BadRequest(problem, data={"errors": {"file": problem}})
    store_file(data_dir, upload.content)
    row = Attachment(
        application_id=app.id,
        kind=kind,
        sha256=digest,
        size=len(upload.content),
        mime=mime,
        original_name=clean_name(upload.name),
        uploaded_by=uploader,
        uploaded_at=now,
        version=app.version + 1,
        removed_at=None,
    )
    session.add(row)
    app.updated_at = now
    await session.flush()
    return row


async def current_attachments(session: AsyncSession, *, app: Application) -> list[Attachment]:
    """The working set: attachments not removed, oldest first."""
    rows = await session.scalars(
        select(Attachment)
        .where(Attachment.application_id == app.id, Attachment.removed_at.is_(None))
        .order_by(Attachment.id)
    )
    return list(rows)


async def remove_attachment(
    session: AsyncSession, *, app: Application, attachment_id: int, now: datetime
) -> None:
    """Take a file out of the working set (it stays with the versions that were submitted)."""
    ensure_editable(app)
    row = await session.get(Attachment, attachment_id)
    if row is None or row.application_id != app.id or row.removed_at is not None:
        raise NotFound("附件不存在")
    row.removed_at = now
    app.updated_at = now
