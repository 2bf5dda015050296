"""The SDK is a small library: installs without the server extra, exports a sorted, complete API."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import imsp.client

SERVER_ONLY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "pydantic_settings",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "aiosqlite",
    "jinja2",
)


def test_sdk_and_client_commands_work_without_the_server_extra(tmp_path: Path) -> None:
    """With every server-only package made unimportable, the SDK loads and the offline commands
    run for real: ``imsp sample`` writes test data and ``imsp validate`` checks it."""
    data = tmp_path / "patients.json"
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        BLOCKED = {SERVER_ONLY!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"blocked: {{name}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        import imsp.client, imsp.cli.client, imsp.cli.outbox, imsp.standard.validate
        from imsp.cli.main import cli
        for args in (
            ["push", "--help"],
            ["outbox", "status", "--help"],
            ["sample", "patient", "--count", "3", "--output", {str(data)!r}],
            ["validate", "uploadPatientFile", {str(data)!r}],
        ):
            try:
                cli.main(args, prog_name="imsp", standalone_mode=False)
            except SystemExit as exc:
                assert not exc.code, (args, exc)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "离线校验" in proc.stdout and proc.stdout.strip().endswith("ok")
    assert len(json.loads(data.read_text("utf-8"))) == 3


def test_public_api_is_sorted_and_complete() -> None:
    exported = imsp.client.__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    public = {
        name
        for name, obj in vars(imsp.client).items()
        if not name.startswith("_") and not inspect.ismodule(obj)
    }
    assert set(exported) == public


def test_every_exported_exception_is_a_client_error() -> None:
    """One error tree: catching ``ClientError`` catches everything the SDK raises on purpose."""
    exceptions = [
        obj
        for name in imsp.client.__all__
        if isinstance(obj := getattr(imsp.client, name), type) and issubclass(obj, BaseException)
    ]
    assert len(exceptions) >= 10
    for cls in exceptions:
        assert issubclass(cls, imsp.client.ClientError), cls
    assert issubclass(imsp.client.TokenError, imsp.client.AuthError)
