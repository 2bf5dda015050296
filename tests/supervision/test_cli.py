"""``imsp supervise sweep``: a partial re-run from the command line, with per-rule figures."""

from __future__ import annotations

from click.testing import CliRunner

from imsp.cli.main import cli
from imsp.config import Settings
from tests.supervision.builders import ORG, Platform, run, world


def test_sweep_command_runs_the_chosen_rule_for_the_chosen_institution(settings: Settings) -> None:
    w = world()
    w["prescription"][0]["recipeCategory"] = "4"

    async def upload() -> None:
        p = Platform(settings)
        try:
            await p.upload_world(w)
        finally:
            await p.close()

    run(upload())
    env = {
        "IMSP_DATABASE_URL": settings.database_url or "",
        "IMSP_DATA_DIR": str(settings.data_dir),
    }
    result = CliRunner().invoke(
        cli, ["supervise", "sweep", "--rule", "R19", "--org", ORG, "--since", "2025-06-01"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "新发现 1" in result.output and "R19" in result.output and "R21" not in result.output
    # shared among two processes (PostgreSQL; one on SQLite): the same finding, seen again
    again = CliRunner().invoke(
        cli, ["supervise", "sweep", "--rule", "R19", "--org", ORG, "--jobs", "2"], env=env
    )
    assert again.exit_code == 0, again.output
    assert "新发现 0" in again.output and "更新 1" in again.output
    zero = CliRunner().invoke(cli, ["supervise", "sweep", "--jobs", "0"], env=env)
    assert zero.exit_code != 0 and "--jobs" in zero.output
    bad = CliRunner().invoke(cli, ["supervise", "sweep", "--rule", "R32"], env=env)
    assert bad.exit_code != 0 and "未知规则 R32" in bad.output
    nobody = CliRunner().invoke(cli, ["supervise", "sweep", "--org", "91110000802100433B"], env=env)
    assert nobody.exit_code != 0 and "不存在" in nobody.output
