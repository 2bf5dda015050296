"""Convert the ICD-10 national clinical 2.0 lists into the Data Standard's code-table format.

Input: two-column CSVs (``code,name``) of 《疾病分类代码国家临床版 2.0》 and
《中医病证分类与代码国家临床版 2.0》 as kept in the project's shared reference folder
(``shared/reference/data/icd10-national-clinical-2.0.csv`` and
``shared/reference/data/icd10-tcm-national-clinical-2.0.csv``).

Output: ``src/imsp/standard/data/v1/codes/icd10.csv`` and ``icd10_tcm.csv`` with the columns
``code,name,aliases,note`` (see ``src/imsp/standard/FORMAT.md``). Rows are copied as they are, in
input order, including the few codes the TCM list repeats under another name; the loader keeps the
first name for a code.

Usage: ``python scripts/import_icd10.py SHARED_REFERENCE_DATA_DIR``
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

CODES = Path(__file__).resolve().parent.parent / "src/imsp/standard/data/v1/codes"
FILES = {
    "icd10-national-clinical-2.0.csv": "icd10.csv",
    "icd10-tcm-national-clinical-2.0.csv": "icd10_tcm.csv",
}


def convert(src: Path, dst: Path) -> int:
    """Copy ``code,name`` rows from ``src`` into a four-column code table at ``dst``."""
    count = 0
    with (
        src.open(encoding="utf-8-sig", newline="") as fin,
        dst.open("w", encoding="utf-8", newline="") as fout,
    ):
        writer = csv.writer(fout, lineterminator="\n")
        writer.writerow(["code", "name", "aliases", "note"])
        for row in csv.DictReader(fin):
            code, name = row["code"].strip(), row["name"].strip()
            if code:
                writer.writerow([code, name, "", ""])
                count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    data = Path(argv[1])
    for src, dst in FILES.items():
        n = convert(data / src, CODES / dst)
        print(f"{dst}: {n} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
