"""The Data Standard as typed, immutable objects loaded from the package's data files.

The format of the files is described in ``FORMAT.md`` beside this module. Loading checks the files'
own consistency (unknown keys, unknown code tables, unknown blocks, key fields that do not exist) so a
mistake in the data fails loudly at start-up, never silently at validation time.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

FieldType = Literal["string", "int", "decimal", "date", "datetime", "list", "object"]
Required = Literal["Y", "N", "C"]

FIELD_TYPES: frozenset[str] = frozenset(
    {"string", "int", "decimal", "date", "datetime", "list", "object"}
)
FORMATS: frozenset[str] = frozenset(
    {"idcard", "uscc", "mobile", "phone", "postcode", "url", "sha256", "workdate"}
)
RULE_KINDS: frozenset[str] = frozenset(
    {"order", "sum", "add", "product", "idcard", "age", "period", "pair", "one_of", "not_equal"}
)
CONDITION_OPS: frozenset[str] = frozenset({"in", "not_in", "present", "lt", "le", "gt", "ge"})
COLUMN_ROLES: frozenset[str] = frozenset(
    {
        "business_time",
        "patient_id",
        "patient_cert_id",
        "doctor_cert_id",
        "visit_no",
        "dept_code",
        "reviewer_cert_id",
    }
)

_FIELD_KEYS = frozenset(
    {
        "code", "name", "type", "length", "scale", "required", "when", "condition", "table",
        "multi", "format", "min", "max", "min_items", "example", "desc", "fields", "since",
        "system",
    }
)  # fmt: skip
_DATASET_KEYS = frozenset(
    {
        "code", "service", "name", "number", "category", "mandatory", "key", "references",
        "description", "decisions", "columns", "fields", "rules",
    }
)  # fmt: skip


class StandardDataError(ValueError):
    """The standard's data files are inconsistent (a bug in the package data, not in input)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One clause of a conditional requirement: ``field`` compared with ``op`` to ``value``."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    code: str
    name: str
    type: FieldType
    required: Required
    length: int | None = None
    scale: int | None = None
    when: tuple[Condition, ...] = ()
    condition: str = ""
    table: str | None = None
    multi: bool = False
    format: str | None = None
    min: float | None = None
    max: float | None = None
    min_items: int | None = None
    example: Any = None
    desc: str = ""
    fields: tuple[Field, ...] = ()
    since: str = ""  # version that added the node; "" = 1.0. Senders of older versions may omit it.
    system: str | None = None  # field naming the code system that decides the table (diagCodeType)

    @property
    def type_label(self) -> str:
        """The type as written in the published spec, e.g. ``decimal(10,2)``."""
        if self.type == "decimal" and self.length is not None:
            return f"decimal({self.length},{self.scale or 0})"
        return self.type


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    params: Mapping[str, Any]
    desc: str = ""
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    code: str
    service: str
    name: str
    number: int
    category: str
    mandatory: bool
    key: tuple[str, ...]
    references: tuple[str, ...]
    description: str
    decisions: tuple[str, ...]
    columns: Mapping[str, str]
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...]

    @property
    def path(self) -> str:
        return "/" + self.service

    def field(self, code: str) -> Field:
        for f in self.fields:
            if f.code == code:
                return f
        raise KeyError(code)

    def walk(self) -> Iterator[tuple[str, Field]]:
        """Every field with its dotted path (``items.amount``), depth first, in message order."""

        def rec(prefix: str, fields: tuple[Field, ...]) -> Iterator[tuple[str, Field]]:
            for f in fields:
                p = prefix + f.code
                yield p, f
                if f.fields:
                    yield from rec(p + ".", f.fields)

        return rec("", self.fields)


@dataclass(frozen=True, slots=True)
class CodeEntry:
    code: str
    name: str
    aliases: tuple[str, ...] = ()
    note: str = ""
    retired: str = ""  # year the code was abolished; "" = current


@dataclass(frozen=True)
class CodeTable:
    name: str
    title: str
    source: str
    note: str
    entries: tuple[CodeEntry, ...]
    #: For a code-system table (diag_code_type): system code → the code table checking it.
    links: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(init=False, repr=False)
    aliases: Mapping[str, str] = field(init=False, repr=False)
    codes: frozenset[str] = field(init=False, repr=False)
    retired: Mapping[str, CodeEntry] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names: dict[str, str] = {}
        aliases: dict[str, str] = {}
        retired: dict[str, CodeEntry] = {}
        for e in self.entries:
            if e.retired:
                # Abolished codes are not current codes: accepted with a warning (code_retired).
                retired[e.code] = e
                continue
            names.setdefault(e.code, e.name)
            for a in e.aliases:
                aliases[a] = e.code
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "aliases", aliases)
        object.__setattr__(self, "codes", frozenset(names))
        object.__setattr__(self, "retired", retired)

    def canonical(self, value: str) -> str | None:
        """The canonical code for ``value`` (itself or via an alias), or ``None`` if unknown."""
        if value in self.codes:
            return value
        return self.aliases.get(value)


@dataclass(frozen=True)
class Standard:
    version: str
    title: str
    meta: Mapping[str, Any]
    datasets: Mapping[str, Dataset]
    tables: Mapping[str, CodeTable]

    @property
    def release(self) -> str:
        """The published version (``1.1``) that checks records: receipts carry it as
        ``standardVersion``; minor versions only add what is valid (数据标准 V1.1 §兼容性)."""
        return str(self.meta["version"])

    def dataset(self, name: str) -> Dataset:
        """Look a dataset up by short code (``prescription``), service (``uploadPrescriptionInfo``)
        or path (``/uploadPrescriptionInfo``). Raises ``KeyError`` if unknown."""
        name = name.lstrip("/")
        found = self.datasets.get(name)
        if found is not None:
            return found
        for ds in self.datasets.values():
            if ds.service == name or ds.service.lower() == name.lower():
                return ds
        raise KeyError(name)

    def ordered(self) -> list[Dataset]:
        return sorted(self.datasets.values(), key=lambda d: d.number)


# --------------------------------------------------------------------------- loading


def _data_root(version: str) -> Any:
    return resources.files("imsp.standard").joinpath("data", version)


def _parse_conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[Condition] = []
    for item in items:
        if not isinstance(item, dict) or "field" not in item:
            raise StandardDataError(f"{where}: `when` needs a table with `field`")
        ops = [k for k in item if k != "field"]
        if len(ops) != 1 or ops[0] not in CONDITION_OPS:
            raise StandardDataError(f"{where}: `when` needs exactly one of {sorted(CONDITION_OPS)}")
        out.append(Condition(field=item["field"], op=ops[0], value=item[ops[0]]))
    return tuple(out)


def _parse_field(raw: dict[str, Any], where: str) -> Field:
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise StandardDataError(f"{where}: unknown keys {sorted(unknown)}")
    for k in ("code", "name", "type", "required"):
        if k not in raw:
            raise StandardDataError(f"{where}: missing `{k}`")
    where = f"{where}.{raw['code']}"
    if raw["type"] not in FIELD_TYPES:
        raise StandardDataError(f"{where}: unknown type {raw['type']!r}")
    if raw["required"] not in ("Y", "N", "C"):
        raise StandardDataError(f"{where}: required must be Y, N or C")
    if raw["required"] == "C" and "when" not in raw:
        raise StandardDataError(f"{where}: required=C needs `when`")
    if raw.get("format") is not None and raw["format"] not in FORMATS:
        raise StandardDataError(f"{where}: unknown format {raw['format']!r}")
    if raw["type"] == "string" and not isinstance(raw.get("length"), int):
        raise StandardDataError(f"{where}: string fields need an integer `length`")
    if raw["type"] == "decimal" and not (
        isinstance(raw.get("length"), int) and isinstance(raw.get("scale"), int)
    ):
        raise StandardDataError(f"{where}: decimal fields need `length` (precision) and `scale`")
    subs = raw.get("fields", [])
    if raw["type"] in ("list", "object") and not subs:
        raise StandardDataError(f"{where}: {raw['type']} fields need sub-`fields`")
    return Field(
        code=raw["code"],
        name=raw["name"],
        type=raw["type"],
        required=raw["required"],
        length=raw.get("length"),
        scale=raw.get("scale"),
        when=_parse_conditions(raw["when"], where) if "when" in raw else (),
        condition=raw.get("condition", ""),
        table=raw.get("table"),
        multi=bool(raw.get("multi", False)),
        format=raw.get("format"),
        min=raw.get("min"),
        max=raw.get("max"),
        min_items=raw.get("min_items"),
        example=raw.get("example"),
        desc=raw.get("desc", ""),
        fields=tuple(_parse_field(s, where) for s in subs),
        since=str(raw.get("since", "")),
        system=raw.get("system"),
    )


def _expand(
    raws: list[dict[str, Any]], blocks: Mapping[str, list[dict[str, Any]]], where: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in raws:
        if "block" in raw:
            name = raw["block"]
            if name not in blocks or len(raw) != 1:
                raise StandardDataError(f"{where}: unknown block {name!r}")
            out.extend(blocks[name])
        else:
            out.append(raw)
    return out


def _load_tables(root: Any) -> dict[str, CodeTable]:
    index = tomllib.loads(root.joinpath("codes", "tables.toml").read_text("utf-8"))
    tables: dict[str, CodeTable] = {}
    for name, meta in index.items():
        text = root.joinpath("codes", f"{name}.csv").read_text("utf-8")
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or reader.fieldnames[:2] != ["code", "name"]:
            raise StandardDataError(f"codes/{name}.csv: header must start with code,name")
        entries = tuple(
            CodeEntry(
                code=row["code"].strip(),
                name=row["name"].strip(),
                aliases=tuple(a for a in (row.get("aliases") or "").split("|") if a),
                note=(row.get("note") or "").strip(),
                retired=(row.get("retired") or "").strip(),
            )
            for row in reader
            if row["code"] and row["code"].strip()
        )
        if not entries:
            raise StandardDataError(f"codes/{name}.csv is empty")
        tables[name] = CodeTable(
            name=name,
            title=meta["title"],
            source=meta.get("source", ""),
            note=meta.get("note", ""),
            entries=entries,
            links=dict(meta.get("tables", {})),
        )
    for name, t in tables.items():
        for code, target in t.links.items():
            if code not in t.codes or target not in tables:
                raise StandardDataError(f"codes/tables.toml [{name}]: bad link {code} → {target}")
    return tables


def _check_dataset(ds: Dataset, tables: Mapping[str, CodeTable]) -> None:
    where = f"datasets/{ds.code}"
    paths = {p: f for p, f in ds.walk()}
    for p, f in paths.items():
        if f.table is not None and f.table not in tables:
            raise StandardDataError(f"{where}.{p}: unknown code table {f.table!r}")
        if f.system is not None:
            sel = paths.get(f.system)
            if sel is None or sel.table is None or not tables[sel.table].links:
                raise StandardDataError(f"{where}.{p}: system {f.system!r} is no code-system field")
    for k in ds.key:
        if k not in paths:
            raise StandardDataError(f"{where}: key field {k!r} is not defined")
    for role, fcode in ds.columns.items():
        if role not in COLUMN_ROLES:
            raise StandardDataError(f"{where}: unknown column role {role!r}")
        if fcode not in paths:
            raise StandardDataError(f"{where}: column {role} names unknown field {fcode!r}")
    codes = [f.code for f in ds.fields]
    if len(codes) != len(set(codes)):
        dup = sorted({c for c in codes if codes.count(c) > 1})
        raise StandardDataError(f"{where}: duplicate fields {dup}")
    for r in ds.rules:
        if r.kind not in RULE_KINDS:
            raise StandardDataError(f"{where}: unknown rule kind {r.kind!r}")


@cache
def load_standard(version: str = "v1") -> Standard:
    """Load (once per process) and cross-check the standard of the given version."""
    root = _data_root(version)
    meta = tomllib.loads(root.joinpath("standard.toml").read_text("utf-8"))
    blocks_raw = tomllib.loads(root.joinpath("blocks.toml").read_text("utf-8"))
    blocks: dict[str, list[dict[str, Any]]] = {k: v["fields"] for k, v in blocks_raw.items()}
    tables = _load_tables(root)
    datasets: dict[str, Dataset] = {}
    ds_dir = root.joinpath("datasets")
    for entry in sorted(ds_dir.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        raw = tomllib.loads(entry.read_text("utf-8"))
        where = f"datasets/{entry.name}"
        unknown = set(raw) - _DATASET_KEYS
        if unknown:
            raise StandardDataError(f"{where}: unknown keys {sorted(unknown)}")
        fields = tuple(_parse_field(f, where) for f in _expand(raw["fields"], blocks, where))
        rules = tuple(
            Rule(
                kind=r["kind"],
                params={k: v for k, v in r.items() if k not in ("kind", "desc", "code")},
                desc=r.get("desc", ""),
                code=r.get("code"),
            )
            for r in raw.get("rules", [])
        )
        ds = Dataset(
            code=raw["code"],
            service=raw["service"],
            name=raw["name"],
            number=int(raw["number"]),
            category=raw["category"],
            mandatory=bool(raw["mandatory"]),
            key=tuple(raw["key"]),
            references=tuple(raw.get("references", [])),
            description=raw.get("description", ""),
            decisions=tuple(raw.get("decisions", [])),
            columns=dict(raw.get("columns", {})),
            fields=fields,
            rules=rules,
        )
        _check_dataset(ds, tables)
        if ds.code in datasets:
            raise StandardDataError(f"{where}: duplicate dataset code {ds.code!r}")
        datasets[ds.code] = ds
    for ds in datasets.values():
        for ref in ds.references:
            if ref not in datasets:
                raise StandardDataError(f"datasets/{ds.code}: unknown reference {ref!r}")
    return Standard(
        version=version,
        title=meta.get("title", ""),
        meta=meta,
        datasets=datasets,
        tables=tables,
    )
