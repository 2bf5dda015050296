"""The sample world looks like a province's data (issue 11): surnames at their published shares
(王 about 7 %, not 47 %), a realistic mix of titles and prescription lengths, long-term and herbal
prescriptions and refunds at plausible shares — so rules and dashboards see realistic data."""

from __future__ import annotations

from collections import Counter

from imsp.standard.sample import generate, vocab

N = 1500


def shares(values: list[str]) -> dict[str, float]:
    counts = Counter(values)
    return {k: v / len(values) for k, v in counts.items()}


def test_surnames_follow_their_published_population_shares() -> None:
    names = [r["patientName"][0] for r in generate("patient", N, seed=3)]
    share = shares(names)
    assert 0.045 < share["王"] < 0.10  # published 7.25 %
    assert 0.045 < share["李"] < 0.10 and 0.045 < share["张"] < 0.10
    top10 = sum(share.get(s, 0) for s in vocab.SURNAMES[:10])
    assert 0.35 < top10 < 0.53  # published 42.9 %
    assert len(share) > 60  # the long tail is there


def test_doctor_titles_are_a_realistic_mix() -> None:
    titles = [r["titleCode"] for r in generate("doctor", 60, seed=3) if r["personType"] == "11"]
    share = shares(titles)
    assert share.get("231", 0) < 0.3  # 主任医师 are a minority
    assert share.get("233", 0) + share.get("234", 0) > 0.4  # 主治 and 住院 the majority


def test_prescription_lengths_long_term_and_herbal_shares() -> None:
    rx = generate("prescription", 400, seed=3)
    long_term = shares([r["longTermFlag"] for r in rx]).get("1", 0)
    herbal = shares([r["recipeType"] for r in rx]).get("3", 0)
    assert 0.04 < long_term < 0.16
    assert 0.03 < herbal < 0.20
    items = generate("prescription_item", 400, seed=3)
    days = Counter(r["useDays"] for r in items)
    assert {7, 14, 28} <= set(days) and max(days) <= 28
    # long-term prescriptions stay within the 4 weeks R27 takes as its risk line
    recipes = {r["recipeID"] for r in rx if r["longTermFlag"] == "1"}
    assert {r["useDays"] for r in items if r["recipeID"] in recipes} == {28}


def test_refunds_point_at_an_earlier_payment_of_the_same_business() -> None:
    payments = generate("payment", 100, seed=3)
    by_id = {p["payId"]: p for p in payments}
    refunds = [p for p in payments if p["chargeRefundCode"] == "2"]
    assert 2 <= len(refunds) <= 8
    for r in refunds:
        original = by_id[r["originalPayId"]]
        assert original["chargeRefundCode"] == "1" and original["bussID"] == r["bussID"]
        assert r["totalFee"] == original["totalFee"] and r["payTime"] > original["payTime"]
