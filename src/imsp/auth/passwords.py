"""Password hashing with argon2id (memory-hard), and the password policy shown to users.

Hashing costs ~50–100 ms of CPU and 64 MiB by design; request handlers use the ``*_async``
forms, which run it off the event loop through ``imsp.cpu.offload`` (bounded to the cores)."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from imsp.cpu import offload

# RFC 9106 "second recommended" profile scaled for a 2-core server: 64 MiB, 3 passes.
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2)

MIN_LENGTH = 10
POLICY = "密码至少 10 位，且须同时包含字母和数字"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    """``hash_password`` on a worker thread."""
    return await offload(hash_password, password)


async def verify_password_async(stored_hash: str, password: str) -> bool:
    """``verify_password`` on a worker thread."""
    return await offload(verify_password, stored_hash, password)


def policy_problem(password: str) -> str | None:
    """A Chinese explanation of why ``password`` is too weak, or ``None`` if acceptable."""
    if (
        len(password) < MIN_LENGTH
        or not re.search(r"[A-Za-z]", password)
        or not re.search(r"\d", password)
    ):
        return POLICY
    return None
