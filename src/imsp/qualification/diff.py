"""Field-level differences between two submitted versions (the rejected one and its resubmission),
so the reviewer checks only what changed (第五章 第 6 步: 补充完善审批资料后再次提交).

Records are matched by their business key (院内科室编码, 身份证号); attachments by upload, then by
kind and SHA-256 (the same file re-uploaded is no change; one of two identical files removed is a
removal). ID numbers are masked in the diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imsp.qualification import fields as F
from imsp.qualification.attachments import KINDS
from imsp.standard.mask import mask


@dataclass(frozen=True, slots=True)
class FieldChange:
    code: str  # "entity.licenseNo" or a record field code
    label: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class RecordChange:
    change: str  # added | removed | changed
    label: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class AttachmentChange:
    change: str  # added | removed
    kind: str
    name: str
    attachment_id: int


@dataclass(frozen=True, slots=True)
class Diff:
    old_version: int
    new_version: int
    profile: tuple[FieldChange, ...] = ()
    departments: tuple[RecordChange, ...] = ()
    doctors: tuple[RecordChange, ...] = ()
    attachments: tuple[AttachmentChange, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.profile or self.departments or self.doctors or self.attachments)


def _profile(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    out: list[FieldChange] = []
    tf = F.type_field()
    a, b = old.get(F.TYPE_FIELD), new.get(F.TYPE_FIELD)
    if a != b:
        out.append(FieldChange(F.TYPE_FIELD, tf.name, F.show_value(tf, a), F.show_value(tf, b)))
    for section, title in F.SECTIONS.items():
        so, sn = old.get(section) or {}, new.get(section) or {}
        for f in F.institution_fields():
            x, y = so.get(f.code), sn.get(f.code)
            if (x or "") != (y or ""):
                out.append(
                    FieldChange(
                        f"{section}.{f.code}",
                        f"{title} · {f.name}",
                        F.show_value(f, x),
                        F.show_value(f, y),
                    )
                )
    return out


def _display(roster: F.Roster, code: str, value: Any) -> str:
    if code in roster.personal:
        return mask(value)
    return F.show_value(roster.field(code), value)


def record_label(roster: F.Roster, record: dict[str, Any]) -> str:
    key = _display(roster, roster.key, record.get(roster.key))
    name = record.get(roster.label_field) or ""
    return f"{key} {name}".strip()


def _records(
    roster: F.Roster, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[RecordChange]:
    before = {str(r.get(roster.key)): r for r in old}
    after = {str(r.get(roster.key)): r for r in new}
    out: list[RecordChange] = []
    for key, rec in after.items():
        prev = before.get(key)
        if prev is None:
            out.append(RecordChange("added", record_label(roster, rec)))
            continue
        changes = tuple(
            FieldChange(
                f.code,
                f.name,
                _display(roster, f.code, prev.get(f.code)),
                _display(roster, f.code, rec.get(f.code)),
            )
            for f in roster.fields
            if (prev.get(f.code) or "") != (rec.get(f.code) or "")
        )
        if changes:
            out.append(RecordChange("changed", record_label(roster, rec), changes))
    for key, rec in before.items():
        if key not in after:
            out.append(RecordChange("removed", record_label(roster, rec)))
    return out


def _attachments(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[AttachmentChange]:
    """Files matched by kind and content: the same upload (same row id) first, then any other
    upload of the same content. What is left over was added or removed — so removing one of two
    identical files is a removal, and re-uploading a removed file's content is no change."""

    def grouped(items: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for a in items:
            out.setdefault((str(a["kind"]), str(a["sha256"])), []).append(a)
        return out

    before, after = grouped(old), grouped(new)
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for key in before.keys() | after.keys():
        olds, news = before.get(key, []), after.get(key, [])
        kept = {int(a["id"]) for a in olds} & {int(a["id"]) for a in news}
        olds = [a for a in olds if int(a["id"]) not in kept]
        news = [a for a in news if int(a["id"]) not in kept]
        paired = min(len(olds), len(news))
        added += news[paired:]
        removed += olds[paired:]

    def change(kind: str, a: dict[str, Any]) -> AttachmentChange:
        return AttachmentChange(
            kind, KINDS.get(str(a["kind"]), str(a["kind"])), str(a["name"]), int(a["id"])
        )

    return [change("added", a) for a in sorted(added, key=lambda a: int(a["id"]))] + [
        change("removed", a) for a in sorted(removed, key=lambda a: int(a["id"]))
    ]


def compare(
    old: dict[str, Any], new: dict[str, Any], *, old_version: int, new_version: int
) -> Diff:
    """What changed from snapshot ``old`` to snapshot ``new``."""
    deps = _records(F.DEPARTMENTS, old.get("departments", []), new.get("departments", []))
    docs = _records(F.DOCTORS, old.get("doctors", []), new.get("doctors", []))
    profile = _profile(old.get("profile", {}), new.get("profile", {}))
    files = _attachments(old.get("attachments", []), new.get("attachments", []))
    return Diff(
        old_version=old_version,
        new_version=new_version,
        profile=tuple(profile),
        departments=tuple(deps),
        doctors=tuple(docs),
        attachments=tuple(files),
        counts={
            "profile": len(profile),
            "departments": len(deps),
            "doctors": len(docs),
            "attachments": len(files),
        },
    )
