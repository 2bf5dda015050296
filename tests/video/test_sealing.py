"""The hospital's appSecret at rest: AES-GCM under the configured key (or a key file)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from imsp.config import Settings, VideoSettings
from imsp.video import sealing


def with_key(tmp_path: Path, key: bytes | str) -> Settings:
    text = key if isinstance(key, str) else base64.b64encode(key).decode()
    return Settings(data_dir=tmp_path, video=VideoSettings(secret_key=SecretStr(text)))


def test_sealed_secret_opens_only_with_the_same_key(tmp_path: Path) -> None:
    one, two = with_key(tmp_path, os.urandom(32)), with_key(tmp_path, os.urandom(32))
    sealed = sealing.seal(one, "vds_secret")
    assert "vds_secret" not in sealed and sealing.unseal(one, sealed) == "vds_secret"
    assert sealing.seal(one, "vds_secret") != sealed  # a fresh nonce each time
    with pytest.raises(sealing.SecretKeyError, match="密钥已更换"):
        sealing.unseal(two, sealed)


def test_without_a_configured_key_a_private_key_file_is_made_once(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    sealed = sealing.seal(s, "x")
    key = tmp_path / "video.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert sealing.unseal(Settings(data_dir=tmp_path), sealed) == "x"


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_configured_key_is_refused_with_a_clear_message(tmp_path: Path, bad: str) -> None:
    with pytest.raises(sealing.SecretKeyError, match="IMSP_VIDEO__SECRET_KEY"):
        sealing.seal(with_key(tmp_path, bad), "x")
