"""The one masking rule for identifiers on screen (《个人信息保护法》第五十一条), used by the
exchange CLI, the hospital CLI and the portal alike."""

from __future__ import annotations

from imsp.standard.mask import mask, mask_key, mask_record, mask_text
from imsp.standard.model import load_standard
from imsp.standard.sample import generate

STD = load_standard()


def test_mask_keeps_only_the_ends() -> None:
    assert mask("130102199001011234") == "130102********1234"
    assert mask("13800138000") == "138****8000"
    assert mask("1234") == "****"
    assert mask("") == mask(None) == ""


def test_mask_text_masks_every_id_number_standing_alone_in_a_message() -> None:
    text = "第 3 条 patientCertID 13010219900101123X 校验位错误；另见 130102199001011234。"
    assert mask_text(text) == (
        "第 3 条 patientCertID 130102********123X 校验位错误；另见 130102********1234。"
    )
    # Part of a longer code (a licence number, a key) is not an ID number on its own.
    assert mask_text("A130102199001011234") == "A130102199001011234"
    assert mask_text("1301021990010112345") == "1301021990010112345"


def test_mask_record_hides_identifiers_everywhere() -> None:
    ds = STD.dataset("prescription")
    rec = generate("prescription", 1, seed=4)[0]
    masked = mask_record(ds, rec)
    for code in ("patientCertID", "doctorCertID", "mobile"):
        assert masked[code] == mask(rec[code]) != rec[code], code
    assert masked["recipeID"] == rec["recipeID"]


def test_mask_key_masks_only_identifier_parts_of_a_business_key() -> None:
    doctor = STD.dataset("doctor")
    cert = generate("doctor", 1, seed=4)[0]["doctorCertID"]
    assert mask_key(doctor, cert) == mask(cert)
    assert mask_key(STD.dataset("patient"), "P0001") == "P0001"
