"""``imsp video serve`` and ``imsp video check``: the check passes against the reference service
(started by the command, with its self-signed certificate) and fails, naming the item, against a
deliberately broken one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from imsp.cli.main import cli
from imsp.client import videoservice as vs
from tests.video import builders as b

pytestmark = pytest.mark.timeout(120)


def check_args(url: str, ca: Path) -> list[str]:
    return [
        "video", "check", url, "--app-id", b.APP_ID, "--app-secret", b.APP_SECRET,
        "--visit-no", b.VISIT, "--id-card-no", b.ID_CARD, "--patient-name", b.PATIENT,
        "--ca", str(ca), "--max-wait", "10",
    ]  # fmt: skip


def test_check_passes_against_the_reference_service_started_by_the_command(
    tmp_path: Path,
) -> None:
    where, index = b.library(tmp_path / "videos")
    env_cmd = [
        sys.executable, "-u", "-m", "imsp.cli.main", "video", "serve", "--dir", str(where),
        "--index", str(index), "--port", "0", "--app-id", b.APP_ID,
        "--app-secret", b.APP_SECRET, "--url-ttl", "2",
    ]  # fmt: skip
    # The service binds port 0 itself and announces the port it got: no bind-and-release race.
    proc = subprocess.Popen(env_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            found = re.search(r"参考视频服务 (https://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "video serve did not announce its address"
        cert = where / ".imsp-video" / "cert.pem"
        assert cert.exists()  # self-signed on first start
        result = CliRunner().invoke(cli, check_args(url, cert))
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert result.exit_code == 0, result.output
    assert "全部 13 项通过" in result.output
    for item in ("授权码获取", "按患者姓名检索", "Range 请求", "播放地址过期", "无效令牌的代码"):
        assert item in result.output


class NoRange(vs.VideoHandler):
    """Broken on purpose: ignores Range and always sends the whole file with 200."""

    def send_file(self, rec: vs.Recording) -> None:
        del self.headers["Range"]
        super().send_file(rec)


def test_check_fails_naming_the_item_against_a_broken_service(tmp_path: Path) -> None:
    where, index = b.library(tmp_path / "videos")
    pki = b.make_pki(tmp_path / "pki")
    with b.serving(vs.load_recordings(where, index), pki, handler=NoRange, url_ttl=2) as server:
        result = CliRunner().invoke(cli, check_args(server.url, pki.ca))
    assert result.exit_code == 1, result.output
    assert "1 项未通过：Range 请求" in result.output
    assert "Range 请求应返回 206，实际 HTTP 200" in result.output


def test_reference_service_refuses_a_bad_index_file(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text(json.dumps([{"file": "../etc/passwd", "visitNo": "1"}]))
    with pytest.raises(ValueError, match="不在视频目录中"):
        vs.load_recordings(tmp_path, tmp_path / "index.json")
