"""The README shows what the demo prints: generate's summary on the fetched 4.17.5 tree, as
`bash scripts/demo.sh` runs it (the repository's config.toml, ./series), and the added define."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import ROOT, run_cli


def _readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```\nxenpatch generate sif-hvm-ghcb:") + 4
    return text[start:text.index("```\n", start)].splitlines()


def test_readme_shows_what_the_demo_prints(xen_tree: Path, tmp_path: Path, gitconfig: Path) -> None:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    proc = run_cli("generate", "--tree", str(xen_tree), cwd=tmp_path,
                   env={"GIT_CONFIG_GLOBAL": str(gitconfig)})
    assert proc.returncode == 0, proc.stderr
    shown = _readme_block()
    summary = shown[:shown.index("")]
    assert proc.stdout.splitlines() == summary
    # The define as the demo quotes it: two lines before the added ones, one after.
    patch = next((tmp_path / "series").glob("0001-*.patch")).read_text().splitlines()
    first = next(i for i, line in enumerate(patch) if line.startswith("+#define SIF_HVM_GHCB"))
    last = next(i for i in range(first, len(patch)) if not patch[i].startswith("+"))
    assert patch[first - 2:last + 1] == shown[shown.index("") + 2:]
