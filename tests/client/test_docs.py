"""docs/client.md cannot rot: every code of the catalogue, every command and every SDK error is in it."""

from __future__ import annotations

from pathlib import Path

import imsp.client
from imsp.cli.main import COMMANDS
from imsp.standard.protocol import GATEWAY, RECORD

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "client.md").read_text("utf-8")
CLIENT_COMMANDS = [name for name, (target, _) in COMMANDS.items() if "cli.client" in target
                   or "cli.outbox" in target]  # fmt: skip


def _rows() -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in GUIDE.splitlines()
        if line.startswith("|")
    ]


def test_guide_lists_every_gateway_code_with_its_message_and_hint() -> None:
    rows = {r[0]: r for r in _rows() if len(r) == 5}
    for code, entry in GATEWAY.items():
        row = rows.get(str(code))
        assert row is not None, code
        assert entry.msg in row and entry.hint in row and str(entry.http_status) in row


def test_guide_lists_every_record_code_with_its_message_and_hint() -> None:
    rows = [r for r in _rows() if len(r) == 3]
    for code, entry in RECORD.items():
        assert [str(code), entry.msg, entry.hint] in rows, code


def test_guide_shows_every_client_command() -> None:
    assert set(CLIENT_COMMANDS) == {"push", "validate", "sample", "token", "selfcheck", "outbox"}
    for name in CLIENT_COMMANDS:
        assert f"imsp {name}" in GUIDE, name
    for sub in ("status", "drain", "parked", "retry", "purge"):
        assert f"imsp outbox {sub}" in GUIDE, sub


def test_guide_shows_the_whole_error_tree() -> None:
    for name in imsp.client.__all__:
        obj = getattr(imsp.client, name)
        if isinstance(obj, type) and issubclass(obj, imsp.client.ClientError):
            assert name in GUIDE, name
