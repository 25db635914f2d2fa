"""``autohands skills list | show | new | check``, and where the bundled skills are found
(the source tree of an editable install, or the data files of ``pip install .``)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import hub.skills
from hub.cli import main
from hub.skills import SkillsConfig, bundled_root, load_all, parse_skill, skill_roots, survey

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ["code-review", "plan-day", "research", "summarise", "write-translate"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[hub]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), "skills", *args])


def add_skill(config: Path, name: str, text: str) -> Path:
    folder = config.parent / "data" / "skills" / name
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(text)
    return folder / "SKILL.md"


def test_list_shows_bundled_and_own_skills_and_problems(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_skill(config, "mine", "---\nname: mine\ndescription: My own.\n---\nbody\n")
    broken = add_skill(config, "broken", "---\nname: broken\n---\n")
    assert run(config, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines if not line.startswith("!")]
    assert names == sorted([*BUNDLED, "mine"])
    assert any(line.split()[:2] == ["mine", "yours"] for line in lines)
    assert lines[-1] == f"! skill {broken} skipped: front matter has no 'description'"


def test_show_prints_a_skill_and_refuses_an_unknown_name(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "show", "research") == 0
    out = capsys.readouterr().out
    assert out.startswith("research (bundled): ") and "files: citations.md" in out and "# Research" in out
    assert run(config, "show", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith("autohands: error: no skill named 'nope'") and len(err.splitlines()) == 1


def test_new_makes_a_skill_that_checks_clean(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "new", "weekly-report", "--description", 'Write the "weekly" report.') == 0
    path = config.parent / "data" / "skills" / "weekly-report" / "SKILL.md"
    skill = parse_skill(path)
    assert (skill.name, skill.description) == ("weekly-report", 'Write the "weekly" report.')
    assert run(config, "check") == 0
    assert capsys.readouterr().out.endswith("6 skill(s) offered, 0 with problems\n")
    assert run(config, "new", "weekly-report") == 1
    assert run(config, "new", "Bad Name") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("weekly-report/SKILL.md already exists") and "is not a skill name" in err[1]


def test_check_fails_on_a_broken_skill_naming_file_and_problem(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = add_skill(config, "broken", "no front matter\n")
    config.write_text(config.read_text() + '[skills]\ndisabled = ["ghost"]\n')
    assert run(config, "check") == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"autohands: error: skill {broken} skipped: no front matter: the file must start with a '---' line",
        "autohands: warning: [skills] names 'ghost', but no skill has that name",
    ]


def test_a_bad_skills_section_is_one_line_naming_the_key(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(config.read_text() + "[skills]\npathz = []\n")
    assert run(config, "list") == 2
    err = capsys.readouterr().err
    assert "skills.pathz: unknown key (did you mean 'paths'?" in err and len(err.splitlines()) == 1


def test_the_cli_reads_skills_without_importing_agents(config: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from hub.cli import main; rc = main(sys.argv[1:]); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'agents'], 'agents imported'; sys.exit(rc)"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config), "skills", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "summarise" in proc.stdout


# ---------------------------------------------------------------------------- shipping
def test_every_bundled_file_is_shipped_as_data_files() -> None:
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {
        str(Path(dest) / Path(f).name)
        for dest, patterns in data_files.items()
        for pattern in patterns
        for f in glob.glob(str(ROOT / pattern))
    }
    files = {
        str(Path("share/autohands") / p.relative_to(ROOT))
        for p in (ROOT / "skills").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert files and files <= shipped, f"add to [tool.setuptools.data-files]: {sorted(files - shipped)}"


def test_bundled_skills_come_from_the_source_tree_or_the_installed_data_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bundled_root() == ROOT / "skills"  # the editable install: the repository's folder
    installed = tmp_path / "prefix" / "share" / "autohands" / "skills"
    (installed / "demo").mkdir(parents=True)
    (installed / "demo" / "SKILL.md").write_text("---\nname: demo\ndescription: Shipped.\n---\nbody\n")
    monkeypatch.setattr(hub.skills, "__file__", str(tmp_path / "site-packages" / "hub" / "skills.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert bundled_root() == installed
    found = survey(SkillsConfig(), load_all(skill_roots(SkillsConfig(), tmp_path / "data")))
    assert [(s.name, s.bundled) for s in found.skills] == [("demo", True)]
