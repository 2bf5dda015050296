"""Attachments: type by content (not name), size limit, content-addressed storage."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import BadRequest
from imsp.qualification.attachments import (
    Upload,
    add_attachment,
    check_upload,
    clean_name,
    current_attachments,
    path_for,
    remove_attachment,
    sniff,
    store_file,
)
from tests.qualification import builders as b


def test_type_is_recognised_from_content_whatever_the_name() -> None:
    assert check_upload(Upload("licence.pdf", b.png()), max_bytes=10_000) == "image/png"
    assert check_upload(Upload("scan.png", b.pdf()), max_bytes=10_000) == "application/pdf"
    assert check_upload(Upload("photo", b"\xff\xd8\xff\xe0rest"), max_bytes=10_000) == "image/jpeg"


@pytest.mark.parametrize(
    "content",
    [b"<html>not a pdf</html>", b"MZ\x90\x00", b"PK\x03\x04zip", b"GIF89a...", b"%PD"],
)
def test_other_content_is_refused_even_with_an_accepted_name(content: bytes) -> None:
    with pytest.raises(BadRequest, match="文件内容不是 PDF、JPG、PNG"):
        check_upload(Upload("licence.pdf", content), max_bytes=10_000)
    assert sniff(content) is None


def test_oversized_and_empty_files_are_refused() -> None:
    with pytest.raises(BadRequest, match="超过上限"):
        check_upload(Upload("big.pdf", b"%PDF-" + b"0" * 2000), max_bytes=1024)
    with pytest.raises(BadRequest, match="文件为空"):
        check_upload(Upload("empty.pdf", b""), max_bytes=1024)


def test_files_are_stored_once_under_their_sha256(tmp_path: Path) -> None:
    content = b.pdf()
    digest = store_file(tmp_path, content)
    assert digest == hashlib.sha256(content).hexdigest()
    target = path_for(tmp_path, digest)
    assert target == tmp_path / "attachments" / digest[:2] / digest
    assert target.read_bytes() == content
    assert store_file(tmp_path, content) == digest
    assert list((tmp_path / "attachments" / digest[:2]).iterdir()) == [target]


def test_uploaded_names_lose_directories_and_control_characters() -> None:
    assert clean_name("C:\\Users\\x\\许可证.pdf") == "许可证.pdf"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("a\x00b\n.pdf") == "ab.pdf"
    assert clean_name("") == "附件"


def _upload(settings: Settings, who: b.Applicant, content: bytes, now: datetime) -> None:
    async def work(session: AsyncSession) -> None:
        app, _ = await b.load(session, who.application_id)
        await add_attachment(
            session,
            app=app,
            kind="approval",
            upload=Upload("again.png", content),
            uploader=who.username,
            data_dir=settings.data_dir,
            max_bytes=settings.portal.max_upload_bytes,
            now=now,
        )

    b.run(settings, work)


def _remove_all(settings: Settings, who: b.Applicant, now: datetime) -> None:
    async def work(session: AsyncSession) -> None:
        app, _ = await b.load(session, who.application_id)
        for row in await current_attachments(session, app=app):
            await remove_attachment(session, app=app, attachment_id=row.id, now=now)

    b.run(settings, work)


def test_a_file_identical_to_a_current_one_is_refused_with_its_name(
    settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_complete_applicant(settings, clock.now())  # has license.bin = b.png()
    with pytest.raises(BadRequest, match=r"与已上传的“license\.bin”（执业许可证）内容完全相同"):
        _upload(settings, who, b.png(), clock.now())
    _upload(settings, who, b.png(3, 3), clock.now())  # other content is welcome
    _remove_all(settings, who, clock.now())
    _upload(settings, who, b.png(), clock.now())  # once removed, the same content may come back
