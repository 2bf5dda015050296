"""The hospital's appSecret at rest: AES-256-GCM with a key from settings (``video.secret_key``)
or, when that is empty, a key file created once in the data directory (mode 0600).

The secret must be used again (the platform signs in to the hospital's service), so it cannot be
a one-way hash; the database alone reveals nothing without the key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from imsp.config import Settings

_AAD = b"imsp.video.endpoint.v1"


class SecretKeyError(Exception):
    """The configured key is unusable, or a stored secret cannot be decrypted with it."""


def _key(settings: Settings) -> bytes:
    configured = settings.video.secret_key.strip()
    if configured:
        try:
            key = base64.b64decode(configured, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SecretKeyError("IMSP_VIDEO__SECRET_KEY 不是合法的 base64") from exc
        if len(key) != 32:
            raise SecretKeyError("IMSP_VIDEO__SECRET_KEY 须为 32 字节（base64 编码）")
        return key
    path = Path(settings.data_dir) / "video.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(AESGCM.generate_key(bit_length=256))
    return path.read_bytes()


def seal(settings: Settings, secret: str) -> str:
    nonce = os.urandom(12)
    box = AESGCM(_key(settings)).encrypt(nonce, secret.encode("utf-8"), _AAD)
    return base64.b64encode(nonce + box).decode("ascii")


def unseal(settings: Settings, sealed: str) -> str:
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(_key(settings)).decrypt(raw[:12], raw[12:], _AAD).decode("utf-8")
    except InvalidTag as exc:
        raise SecretKeyError("无法解密已登记的 appSecret：密钥已更换，请重新登记视频服务") from exc
