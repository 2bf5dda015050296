"""A realistic upload stream for wrk: copies of a sample world, record by record (not a test).

Used by ``bench_supervision.py ingest --data world``. A *world* (``imsp.standard.sample``: an
institution's departments, doctors, patients and their registrations, visits, prescriptions,
items, payments, reports …, mutually consistent) becomes one request template per record — a
single-record upload to the record's own service, in the world's upload order (base data
first). wrk (``LUA`` below) sends endless *copies* of it: every business key and every reference
to one (patient, doctor, department, visit, prescription, application …) is renamed per copy,
consistently, so each request is a new insert whose references resolve within its copy, as a
hospital's real traffic does.

Renaming: a template holds ``value@@K@@`` where a key or a visit number was, and wrk appends
``-<serial>-<copy>``; a doctor's resident ID number (``doctorCertID``, GB 11643: the join key of
人员信息, and checked) is written ``@@I<doctor><birth date><sex digit>@@`` and wrk makes a valid
number of it for each copy: the copy and doctor in the 6 digits of the division code (not
checked by the standard), ``serial`` in the sequence digits, the same birth date and sex digit,
and the MOD 11-2 check character. ``serial`` (``BENCH_SERIAL``) is new for every wrk run, so no
two runs of one benchmark upload the same key. :func:`instantiate` is the same substitution in
Python, for :func:`preflight`.

Interleaving: each of wrk's threads keeps ``BENCH_LANES`` copies in flight (one per connection):
request ``n`` of a thread is record ``n // lanes`` (modulo the world's size) of lane ``n %
lanes``'s copy — each copy goes in its world's order, ``lanes`` copies interleaved, and the
record before it in its copy was sent ``lanes`` requests earlier (almost always answered).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

import wrk_lua

#: Key fields not renamed: the institution (``organID`` must be the token's), positions within
#: a renamed key (``recipeDetailId`` under ``recipeID``) and versions.
FIXED_KEYS = frozenset({"organID", "recipeDetailId", "version"})
#: Datasets left out of the stream, uploaded once before it: the institution's own record (its
#: key is the institution) and its agreements (知情同意书 and service agreements: documents of
#: the institution that change a few times a year, not with every patient — and each change
#: re-runs R17 over all the institution's visits).
ONCE = frozenset({"organization", "agreement"})

LUA = wrk_lua.script(r"""
local paths, bodies = {}, {}
for line in io.lines(os.getenv("BENCH_BODY")) do
  local tab = string.find(line, "\t", 1, true)
  paths[#paths + 1] = string.sub(line, 1, tab - 1)
  bodies[#bodies + 1] = string.sub(line, tab + 1)
end
local serial = tonumber(os.getenv("BENCH_SERIAL"))
local lanes = tonumber(os.getenv("BENCH_LANES"))
local doctors = tonumber(os.getenv("BENCH_DOCTORS"))
local nthreads = tonumber(os.getenv("BENCH_THREADS"))
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = "10X98765432"
local function card(copy, doctor, rest)
  local division = (copy * doctors + tonumber(doctor)) % 1000000
  local body = string.format("%06d", division) .. string.sub(rest, 1, 8)
    .. string.format("%02d", serial % 100) .. string.sub(rest, 9, 9)
  local sum = 0
  for i = 1, 17 do sum = sum + tonumber(string.sub(body, i, i)) * weights[i] end
  local r = sum % 11
  return body .. string.sub(checks, r + 1, r + 1)
end
function request()
  local lane = counter % lanes
  local step = math.floor(counter / lanes)
  local at = step % #bodies + 1
  local copy = (math.floor(step / #bodies) * lanes + lane) * nthreads + id - 1
  counter = counter + 1
  local body = string.gsub(bodies[at], "@@K@@", "-" .. serial .. "-" .. copy)
  body = string.gsub(body, "@@I(%d%d%d)(%d+)@@", function(doctor, rest)
    return card(copy, doctor, rest)
  end)
  return wrk.format(nil, paths[at], nil, body)
end
""")


def templates(world: Mapping[str, list[dict[str, Any]]]) -> tuple[list[str], int]:
    """One template line (``/service<TAB>[record]``) per record of ``world`` (dataset → records,
    in upload order), with its keys and references marked for renaming; and the number of
    doctors (their ID numbers are numbered per copy)."""
    from imsp.standard.model import load_standard

    std = load_standard()
    names: dict[str, str] = {}
    doctors = 0
    for code, docs in world.items():
        if code in ONCE:
            continue
        for doc in docs:
            if code == "doctor":
                cert = doc["doctorCertID"]
                names[cert] = f"@@I{doctors:03d}{cert[6:14]}{cert[16]}@@"
                doctors += 1
            ds = std.datasets[code]
            wanted = [k for k in ds.key if k not in FIXED_KEYS]
            if "visit_no" in ds.columns:
                wanted.append(ds.columns["visit_no"])
            for field in wanted:
                value = doc.get(field)
                if isinstance(value, str) and value and value not in names:
                    names[value] = f"{value}@@K@@"
    if doctors > 999:
        raise SystemExit("a world of more than 999 doctors cannot be numbered per copy")
    lines = [
        f"/{std.datasets[code].service}\t" + orjson.dumps([_renamed(doc, names)]).decode()
        for code, docs in world.items()
        if code not in ONCE
        for doc in docs
    ]
    return lines, doctors


def _renamed(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


_CARD = re.compile(r"@@I(\d{3})(\d{9})@@")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def instantiate(template: str, *, serial: int, copy: int, doctors: int) -> str:
    """The body wrk sends for ``template`` in copy ``copy`` of run ``serial`` (as ``LUA``)."""

    def card(m: re.Match[str]) -> str:
        division = (copy * doctors + int(m[1])) % 1_000_000
        rest = m[2]
        body = f"{division:06d}{rest[:8]}{serial % 100:02d}{rest[8]}"
        r = sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11
        return body + "10X98765432"[r]

    return _CARD.sub(card, template.replace("@@K@@", f"-{serial}-{copy}"))


def write(workdir: Path, lines: list[str]) -> Path:
    """The templates and the Lua script in ``workdir`` (the directory given to bench_ingest's
    ``wrk`` as its work directory); returns the templates' path."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "upload.lua").write_text(LUA)
    body = workdir / "world.tsv"
    body.write_text("\n".join(lines) + "\n", "utf-8")
    return body


def preflight(lines: list[str], doctors: int) -> None:
    """Every template, renamed with the longest suffix a run writes, passes the Data Standard's
    checks and the platform's key length: a key grown too long or an ID number miscomputed would
    be rejected by every copy."""
    from imsp.exchange.models import KEY_LENGTH
    from imsp.standard.model import load_standard
    from imsp.standard.validate import validator_for

    by_service = {d.service: d for d in load_standard().datasets.values()}
    for n, line in enumerate(lines):
        path, body = line.split("\t", 1)
        ds = by_service[path[1:]]
        records = orjson.loads(instantiate(body, serial=99, copy=99_999, doctors=doctors))
        for v in validator_for(ds).check_many(records):
            if v.errors or v.key is None or len(v.key) > KEY_LENGTH:
                raise SystemExit(f"template {n} ({path}) would be rejected: {v.errors} {v.key}")
