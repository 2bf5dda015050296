"""The printable PDF of the whole spec (``imsp standard docs --pdf``): Chinese fonts embedded,
the first page and one field table rendered to PNG under ``test-artifacts/`` to look at."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from imsp.cli.main import cli

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm 不可用：install-system-deps.sh --dev"
)


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spec")
    path = out / "spec.pdf"
    result = CliRunner().invoke(
        cli, ["standard", "docs", "--out", str(out / "md"), "--pdf", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    where = Path(str(request.config.rootpath)) / "test-artifacts" / "standard" / "spec_pdf"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    return where


def page_text(pdf: Path, page: int) -> str:
    args = ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])


def to_png(pdf: Path, page: int, target: Path) -> Path:
    stem = target.with_suffix("")
    args = ["pdftoppm", "-png", "-r", "80", "-singlefile", "-f", str(page), "-l", str(page)]
    subprocess.run([*args, str(pdf), str(stem)], check=True)
    return target


def test_pdf_embeds_the_chinese_fonts(pdf: Path) -> None:
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    rows = [line for line in fonts.stdout.splitlines() if "CJK-SC" in line]
    assert any("Noto-Serif-CJK-SC" in r for r in rows)
    assert rows and all(" yes yes yes " in r for r in rows)  # embedded, subset, unicode map


def test_first_page_is_the_title_rendered_to_png(pdf: Path, artifacts: Path) -> None:
    assert "河北省互联网医疗服务监管平台数据接口规范" in page_text(pdf, 1)
    png = to_png(pdf, 1, artifacts / "page-001.png")
    assert png.stat().st_size > 5_000


def test_a_field_table_page_is_rendered_to_png(pdf: Path, artifacts: Path) -> None:
    assert page_count(pdf) > 50  # the whole spec, not a summary
    whole = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    pages = whole.stdout.split("\f")
    # the prescription's field table: its code column is never wrapped
    hit = next(n for n, text in enumerate(pages, 1) if "recipeUniqueID" in text and "示例" in text)
    png = to_png(pdf, hit, artifacts / f"page-{hit:03d}-prescription-fields.png")
    assert png.stat().st_size > 20_000
