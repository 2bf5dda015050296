"""Self-check before applying for acceptance (接入确认, 第四章): token, then every upload service in
dry-run and real mode with test data, each with a pass/fail and the reason.

Datasets are checked in the order of ``samples`` — ``imsp.standard.sample.generate_all`` gives them
in upload order (organisation, departments and doctors before the visits and prescriptions that refer
to them), so what a dataset refers to has been uploaded for real before it is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imsp.client.client import Client
from imsp.client.errors import ClientError
from imsp.client.receipt import Receipt
from imsp.standard.model import load_standard


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the self-check table."""

    name: str  # "令牌" or the service name
    title: str  # Chinese name
    dry_run: str  # outcome text of the dry run ("" for the token step)
    real: str
    ok: bool
    reason: str = ""


def _outcome(receipt: Receipt) -> tuple[bool, str, str]:
    text = f"{receipt.success}/{receipt.total} 通过"
    if receipt.ok:
        return True, text, ""
    first = receipt.rejected[0]
    why = first.errors[0].msg if first.errors else first.msg
    return False, text, f"第 {first.index} 条 {first.msg_code} {why}"


def run(
    client: Client,
    samples: Mapping[str, Sequence[Any]],
    *,
    on_step: Callable[[Step], None] | None = None,
) -> list[Step]:
    """Check the token, then every dataset of ``samples`` (keyed by dataset code, in order)."""
    steps: list[Step] = []

    def add(step: Step) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    try:
        token = client.token(refresh=True)
    except ClientError as exc:
        add(Step("accesstoken", "授权码获取", "", "", False, str(exc)))
        return steps
    add(Step("accesstoken", "授权码获取", "", f"有效期 {token.expires_in} 秒", True))
    std = load_standard()
    for code, sample in samples.items():
        ds = std.dataset(code)
        records = list(sample)
        try:
            ok_dry, dry, why = _outcome(client.upload(ds.code, records, dry_run=True))
            if not ok_dry:
                add(Step(ds.service, ds.name, dry, "未执行", False, "试运行：" + why))
                continue
            ok_real, real, why = _outcome(client.upload(ds.code, records))
            add(Step(ds.service, ds.name, dry, real, ok_real, why and "正式上传：" + why))
        except ClientError as exc:
            add(Step(ds.service, ds.name, "出错", "未执行", False, str(exc)))
    return steps
