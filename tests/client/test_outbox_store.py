"""The outbox file on its own: durability, batch order, recovery, parking and retry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from imsp.client import Outbox
from imsp.client.receipt import FieldError, Receipt, RecordResult


def _patient(n: int) -> dict[str, object]:
    return {"patientId": f"P{n}", "n": n}


def test_enqueued_records_survive_a_process_that_dies_right_after(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    script = textwrap.dedent(
        f"""
        import os
        from imsp.client import Outbox
        box = Outbox({str(path)!r})
        box.enqueue("uploadPatientFile", [{{"patientId": f"P{{i}}"}} for i in range(50)])
        os._exit(0)  # no close, no checkpoint: only what COMMIT made durable remains
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with Outbox(path) as box:
        assert box.status().total("pending") == 50


def test_enqueue_accepts_service_name_or_short_code_and_returns_ids(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        a = box.enqueue("uploadPatientFile", [_patient(1), _patient(2)])
        b = box.enqueue("patient", [_patient(3)])
        assert b[0] > a[-1] and len(a) == 2
        assert box.status().counts == {"patient": {"pending": 3}}


def test_a_batch_never_holds_one_business_key_twice(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.enqueue("patient", [_patient(1), _patient(2), _patient(1), _patient(3)])
        first = box.claim(10)
        assert first is not None
        assert [r["patientId"] for r in first.records] == ["P1", "P2"]


def test_a_batch_does_not_overtake_records_it_refers_to(tmp_path: Path) -> None:
    """A prescription item refers to its prescription: items queued after a prescription wait."""
    with Outbox(tmp_path / "o.db") as box:
        box.enqueue("prescription_item", [{"recipeID": "R1", "recipeDetailId": "1"}])
        box.enqueue("prescription", [{"recipeID": "R2"}])
        box.enqueue("prescription_item", [{"recipeID": "R2", "recipeDetailId": "1"}])
        box.enqueue("register", [{"bussID": "G1"}])  # not upstream of items: may be overtaken
        box.enqueue("prescription_item", [{"recipeID": "R3", "recipeDetailId": "1"}])
        batches = []
        while (claim := box.claim(10)) is not None:
            batches.append((claim.dataset, len(claim.ids)))
        assert batches == [("prescription_item", 1), ("prescription", 1), ("prescription_item", 2),
                           ("register", 1)]  # fmt: skip


def test_cyclic_references_still_make_progress(tmp_path: Path) -> None:
    """Departments and doctors refer to each other; interleaved, each claim still takes the head."""
    with Outbox(tmp_path / "o.db") as box:
        for i in range(3):
            box.enqueue("department", [{"deptID": f"D{i}"}])
            box.enqueue("doctor", [{"doctorCertID": f"C{i}"}])
        claimed = 0
        while (claim := box.claim(10)) is not None:
            claimed += len(claim.ids)
        assert claimed == 6


def test_orphaned_in_flight_records_are_recovered_as_pending(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.enqueue("patient", [_patient(i) for i in range(5)])
        assert box.claim(3) is not None
        assert box.status().total("inflight") == 3
    with Outbox(tmp_path / "o.db") as box:  # "the next sender"
        assert box.recover() == 3
        assert box.status().total("pending") == 5


def _receipt(n: int, bad: set[int]) -> Receipt:
    results = tuple(
        RecordResult(
            i, f"P{i}", -97, "值域不合法", (FieldError("sex", "value_set", "性别不在值域内"),)
        )
        if i in bad
        else RecordResult(i, f"P{i}", 200, "成功")
        for i in range(n)
    )
    return Receipt("patient", n, n - len(bad), len(bad), results)


def test_rejected_records_are_parked_with_errors_and_requeued_after_a_fix(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        ids = box.enqueue("patient", [_patient(i) for i in range(4)])
        claim = box.claim(10)
        assert claim is not None
        assert box.settle(claim, _receipt(4, bad={1, 3})) == (2, 2)
        parked = box.parked()
        assert [p.id for p in parked] == [ids[1], ids[3]]
        assert parked[0].errors[0].field == "sex" and parked[0].msg_code == -97
        outcome = box.outcome(ids)
        assert [s for s, _ in outcome.values()] == ["delivered", "parked", "delivered", "parked"]
        assert box.retry(replacements={ids[1]: {"patientId": "P1", "fixed": True}}) == 1
        again = box.claim(10)
        assert again is not None and again.records == [{"patientId": "P1", "fixed": True}]
        assert box.status().total("parked") == 1  # the other one waits for its own fix
        assert box.retry() == 1


def test_purge_removes_only_old_delivered_records(tmp_path: Path) -> None:
    now = [1000.0]
    with Outbox(tmp_path / "o.db", now=lambda: now[0]) as box:
        box.enqueue("patient", [_patient(i) for i in range(3)])
        claim = box.claim(10)
        assert claim is not None
        box.settle(claim, _receipt(3, bad={2}))
        now[0] += 8 * 86400
        assert box.purge_delivered(older_than=7 * 86400) == 2
        assert box.status().counts == {"patient": {"parked": 1}}


def test_the_outbox_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.enqueue("patient", [_patient(1)])
        for name in ("o.db", "o.db-wal"):
            assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
