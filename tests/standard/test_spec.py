"""The published interface spec: complete, current, consistent with the code, self-contained."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from imsp.standard import spec
from imsp.standard.issues import ISSUES
from imsp.standard.jsonschema import CUSTOM_FORMATS, NOT_EXPRESSIBLE
from imsp.standard.model import load_standard
from imsp.standard.protocol import GATEWAY, RECORD
from imsp.standard.spec import content, services
from imsp.standard.validate import validator_for

DOCS = Path(__file__).resolve().parents[2] / "docs" / "standard"
STD = load_standard()
MD = spec.render_markdown()
HTML = spec.render_html()
ALL_MD = "\n".join(MD.values())


def test_docs_directory_is_current() -> None:
    """Fails when the data standard changed without ``imsp standard docs`` being run."""
    stale = spec.stale_docs(DOCS)
    assert stale == [], f"docs/standard is stale ({stale}); run: imsp standard docs"


def test_rendering_is_deterministic() -> None:
    assert spec.render_markdown(STD) == MD
    assert spec.render_html(STD) == HTML


@pytest.mark.parametrize("code", sorted(STD.datasets))
def test_every_field_of_every_dataset_is_in_its_service_section(code: str) -> None:
    ds = STD.datasets[code]
    text = MD[f"{services.slug(ds)}.md"]
    for path, f in ds.walk():
        assert f"`{path}`" in text, path
        assert f"<code>{path}</code>" in HTML, path
        assert f.name in text, path
        if f.required == "C":
            assert f.condition in text, path
    for k in ds.key:
        assert f"`{k}`" in text
    for d in ds.decisions:  # rule IDs in the text become links to chapter 监管规则
        assert re.split(r"R\d{2}", d)[0][:20] in HTML
    assert ds.path in text and "POST" in text


def test_every_code_table_and_its_codes_are_in_the_spec() -> None:
    codes = MD["4-codes.md"]
    for name, table in STD.tables.items():
        assert f'<a id="code-{name}"></a>' in codes, name
        assert f'id="code-{name}"' in HTML, name
        assert table.title in codes, name
        shown = table.entries if len(table.entries) <= services.PRINT_LIMIT else table.entries[:10]
        for e in shown:
            assert f"`{e.code}`" in codes, (name, e.code)
        if len(table.entries) > services.PRINT_LIMIT:
            assert f"/standard/v1/codes/{name}.json" in codes


def test_every_error_code_issue_code_and_format_is_documented() -> None:
    errors = MD["5-errors.md"]
    for c in GATEWAY:
        assert f"`{c}`" in errors
    for c in RECORD:
        assert f"`{c}`" in errors
    for k in ISSUES:
        assert f"`{k}`" in errors
    for k in content.exchange_issues():
        assert f"`{k}`" in errors
    schema = MD["6-schema.md"]
    for name in (*CUSTOM_FORMATS, *NOT_EXPRESSIBLE):
        assert f"`{name}`" in schema, name
    for fmt, (_, published) in services.FORMATS.items():
        assert published in CUSTOM_FORMATS, fmt


def test_token_service_and_conventions_come_from_the_data() -> None:
    assert "/auth/accesstoken/create" in MD["2-token.md"]
    assert "方式一" in MD["2-token.md"] and "方式二" in MD["2-token.md"]
    for c in STD.meta["conventions"]:
        assert c.rstrip("。")[:15] in HTML
    for d in STD.meta["decisions"]:
        assert d[:15] in HTML


def test_stated_exchange_defaults_match_the_server_settings() -> None:
    from imsp.config import ExchangeSettings

    defaults = ExchangeSettings()
    assert defaults.max_records == content.MAX_RECORDS
    assert defaults.max_body_bytes == content.MAX_BODY_MB * 1024 * 1024
    assert defaults.token_ttl_seconds == content.TOKEN_TTL_SECONDS


_FENCE = re.compile(r"```json\n(.*?)\n```", re.S)


@pytest.mark.parametrize("code", sorted(STD.datasets))
def test_example_request_is_valid_and_receipts_match_the_validator(code: str) -> None:
    ds = STD.datasets[code]
    text = MD[f"{services.slug(ds)}.md"]
    body, ok, mixed = (json.loads(b) for b in _FENCE.findall(text)[:3])
    v = validator_for(ds)
    assert isinstance(body, list) and body
    for i, rec in enumerate(body):
        assert v.check(rec, i).errors == []
    assert [r["key"] for r in ok["data"]["results"]] == [v.check(r).key for r in body]
    failed = mixed["data"]["results"][-1]
    assert failed["msgCode"] == -99 and failed["errors"][0]["code"] == "required"
    assert mixed["data"]["fail"] == 1


def test_markdown_links_resolve() -> None:
    anchors = {name: set(re.findall(r'<a id="([^"]+)"></a>', text)) for name, text in MD.items()}
    for name, text in MD.items():
        for target, anchor in re.findall(r"\]\(([^)#]*)#([^)]+)\)", text):
            file = target or name
            assert file in MD, (name, target)
            assert anchor in anchors[file], (name, target, anchor)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.external: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))
        for key in ("src", "href"):
            value = a.get(key) or ""
            if tag != "a" and value:
                self.external.append(value)
        if tag in ("script", "link", "img", "iframe"):
            self.external.append(tag)
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def test_html_page_is_self_contained_and_its_links_resolve() -> None:
    page = _Page()
    page.feed(HTML)
    assert page.external == []
    assert all(h.startswith("#") for h in page.hrefs)
    assert {h[1:] for h in page.hrefs} <= page.ids
    assert page.styles == [spec.CSS]
    assert HTML.count("<h1") == 1
    assert spec.css_sha256().startswith("'sha256-")


def test_write_docs_replaces_stale_files(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("x", "utf-8")
    spec.write_docs(tmp_path)
    assert spec.stale_docs(tmp_path) == []
    assert not (tmp_path / "old.md").exists()
    (tmp_path / "2-token.md").write_text("changed", "utf-8")
    assert spec.stale_docs(tmp_path) == ["2-token.md"]
