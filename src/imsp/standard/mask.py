"""Masking of personal identifiers for display: the ONE rule, for the server, the CLI and the SDK.

ID numbers are stored as sent — supervision needs them to link a patient or a doctor across
institutions — but never shown in full (《个人信息保护法》第五十一条: 采取去标识化等安全技术措施):
a resident ID number ``130102199001011234`` is shown as ``130102********1234`` (the region and the
check part stay, so a person can still tell two records apart), a mobile ``13800138000`` as
``138****8000``. Pure: the SDK may import it.
"""

from __future__ import annotations

import re
from typing import Any, Final

from imsp.standard.model import Dataset, Field

#: Formats and node names that carry a personal identifier or contact number.
_FORMATS: Final = frozenset({"idcard", "mobile", "phone"})
_NAMES: Final = re.compile(r"(cert_?id|card_?no|mobile|phone|tel)$", re.IGNORECASE)
#: An 18-character resident ID number (GB 11643) standing on its own inside free text.
_IDCARD_IN_TEXT: Final = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")


def mask(value: str | None) -> str:
    """Keep the first 6 and last 4 characters of a long identifier, 3 and 4 of a shorter one;
    hide a very short one entirely (``None`` or blank: ``""``)."""
    if not value:
        return ""
    n = len(value)
    if n >= 15:
        return value[:6] + "*" * (n - 10) + value[-4:]
    if n >= 8:
        return value[:3] + "*" * (n - 7) + value[-4:]
    return "*" * n


def mask_text(text: str) -> str:
    """``text`` (a message, a table cell) with every resident ID number in it masked."""
    return _IDCARD_IN_TEXT.sub(lambda m: mask(m.group(0)), text)


def is_sensitive(f: Field) -> bool:
    """Whether a field of the standard holds an identifier or a contact number."""
    return f.format in _FORMATS or bool(_NAMES.search(f.code))


def mask_key(ds: Dataset, key: str) -> str:
    """A business key for display: masked where one of its fields is an identifier (doctor)."""
    parts = key.split("|")
    if len(parts) != len(ds.key):
        return key
    paths = dict(ds.walk())
    return "|".join(
        mask(p) if k in paths and is_sensitive(paths[k]) else p
        for k, p in zip(ds.key, parts, strict=True)
    )


def mask_record(ds: Dataset, record: Any) -> Any:
    """A copy of ``record`` with every identifier masked (unknown nodes are left as they are)."""
    return _mask_node(ds.fields, record)


def _mask_node(fields: tuple[Field, ...], node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    by_code = {f.code: f for f in fields}
    out: dict[str, Any] = {}
    for k, v in node.items():
        f = by_code.get(k)
        if f is None:
            out[k] = v
        elif f.fields and isinstance(v, list):
            out[k] = [_mask_node(f.fields, el) for el in v]
        elif f.fields:
            out[k] = _mask_node(f.fields, v)
        elif isinstance(v, str) and v and is_sensitive(f):
            out[k] = mask(v)
        else:
            out[k] = v
    return out
