"""scripts/demo installs the small ``demo`` extra, not every development dependency: with it
alone, the showcase it serves imports and builds both of its apps."""

from __future__ import annotations

import pathlib
import subprocess
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_demo_extra_is_enough_for_the_showcase(tmp_path: pathlib.Path) -> None:
    venv.create(tmp_path / "env", with_pip=True)
    python = tmp_path / "env" / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{ROOT}[demo]"],
        check=True,
        capture_output=True,
    )
    probe = (
        "import examples.showcase as s\n"
        "s.api_app(['http://127.0.0.1:8000'])\n"
        "import uvicorn\n"
        "print(type(s.app).__name__)"
    )
    result = subprocess.run(
        [python, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert result.stdout.strip() == "Starlette"
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout.lower()
    for development_only in ("pytest==", "playwright==", "fastapi==", "mkdocs=="):
        assert development_only not in installed
