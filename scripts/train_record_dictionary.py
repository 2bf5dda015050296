"""Train the zstd dictionary of the stored record encoding (``imsp.exchange.codec``).

Deterministic: the samples are the Data Standard's generated records (``imsp.standard.sample``)
of every dataset, fixed seeds, serialised canonically (``codec.canonical``: sorted keys), and the
training parameters are fixed (one thread). Usage::

    .venv/bin/python scripts/train_record_dictionary.py VERSION

writes ``src/imsp/exchange/dictionaries/record-vVERSION.zdict``. A released dictionary is never
changed or removed: stored records name theirs in each frame; a new one gets the next version
and becomes ``codec.CURRENT``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import zstandard

from imsp.exchange import codec
from imsp.standard.sample import generate_all

#: Seeds of the training samples (the tests use seed 0, so it is left out).
SEEDS = range(1, 9)
#: Records per dataset and seed (singletons such as the organisation give one).
PER_DATASET = 40
SIZE = 64 * 1024


def samples() -> list[bytes]:
    out: list[bytes] = []
    for seed in SEEDS:
        for records in generate_all(PER_DATASET, seed=seed).values():
            out.extend(codec.canonical(r) for r in records)
    return out


def train(version: int) -> bytes:
    data = zstandard.train_dictionary(
        SIZE,
        samples(),
        dict_id=codec.dictionary_id(version),
        k=1024,
        d=8,
        threads=1,
        level=codec.LEVEL,
    )
    return data.as_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", type=int)
    args = parser.parse_args()
    blob = train(args.version)
    path = codec.DICTIONARIES / f"record-v{args.version}.zdict"
    Path(path).write_bytes(blob)
    print(f"{path}: {len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()}")


if __name__ == "__main__":
    main()
