"""``imsp standard …`` commands, with the client dependencies only, and the portal's ``/spec``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imsp.cli.main import cli
from imsp.standard import spec
from imsp.standard.jsonschema import dataset_schema
from imsp.standard.model import load_standard
from imsp.standard.sample import generate

STD = load_standard()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["standard", *args])
    return result.exit_code, result.output


def test_list_shows_every_dataset_with_service_code_name_and_field_count() -> None:
    code, out = run("list")
    assert code == 0
    for ds in STD.ordered():
        line = next(line for line in out.splitlines() if f" {ds.service} " in line)
        assert ds.code in line and ds.name in line
        assert f" {sum(1 for _ in ds.walk())} " in line


def test_export_writes_schemas_by_service_name_and_code_tables(tmp_path: Path) -> None:
    code, out = run("export", str(tmp_path))
    assert code == 0, out
    for ds in STD.ordered():
        written = json.loads((tmp_path / f"{ds.service}.schema.json").read_text("utf-8"))
        assert written == json.loads(json.dumps(dataset_schema(ds)))
    for name in STD.tables:
        table = json.loads((tmp_path / "codes" / f"{name}.json").read_text("utf-8"))
        assert table["name"] == name and table["codes"]


def test_docs_writes_and_check_detects_staleness(tmp_path: Path) -> None:
    out_dir = tmp_path / "docs"
    code, out = run("docs", "--check", "--out", str(out_dir))
    assert code != 0 and "过期" in out
    assert run("docs", "--out", str(out_dir))[0] == 0
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(spec.render_markdown())
    assert run("docs", "--check", "--out", str(out_dir))[0] == 0
    (out_dir / "5-errors.md").write_text("edited by hand\n", "utf-8")
    code, out = run("docs", "--check", "--out", str(out_dir))
    assert code != 0 and "5-errors.md" in out


def test_sample_prints_a_json_array_by_code_or_service_name() -> None:
    code, out = run("sample", "uploadPrescriptionInfo", "--count", "3", "--seed", "2")
    assert code == 0
    assert json.loads(out) == generate("prescription", 3, seed=2)
    code, out = run(
        "sample", "doctor", "-n", "2", "--org", "12130100401703058A", "--org-name", "某医院"
    )
    records = json.loads(out)
    assert code == 0 and {r["organID"] for r in records} == {"12130100401703058A"}
    assert {r["organName"] for r in records} == {"某医院"}


def test_sample_refuses_unknown_dataset_and_invalid_institution_code() -> None:
    code, out = run("sample", "nosuch")
    assert code != 0 and "未知的数据集" in out and "Traceback" not in out
    code, out = run("sample", "patient", "--org", "12130100401703058B")
    assert code != 0 and "统一社会信用代码" in out


_BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "starlette", "sqlalchemy", "pydantic", "uvicorn", "jsonschema", "alembic"}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from imsp.cli.main import cli
cli.main(args=sys.argv[1:], prog_name="imsp")
"""


def test_standard_commands_need_only_the_client_dependencies(tmp_path: Path) -> None:
    def imsp(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", _BLOCKER, "standard", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    assert imsp("list").returncode == 0
    r = imsp("sample", "lis", "-n", "2")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 2
    r = imsp("export", str(tmp_path / "export"))
    assert r.returncode == 0, r.stderr
    r = imsp("docs", "--out", str(tmp_path / "docs"))
    assert r.returncode == 0, r.stderr
    assert imsp("docs", "--check", "--out", str(tmp_path / "docs")).returncode == 0


def test_portal_spec_page_is_public_html_with_its_own_style_policy() -> None:
    from imsp.portal.spec import install

    app = FastAPI()
    install(app)
    with TestClient(app) as client:
        r = client.get("/spec")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == spec.render_html()
    policy = r.headers["content-security-policy"]
    assert spec.css_sha256() in policy and "script-src" not in policy
