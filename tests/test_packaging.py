"""The distribution installs with only its runtime dependencies and imports without any web
framework, test tool or optional extra."""

from __future__ import annotations

import pathlib
import subprocess
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_installs_and_imports_with_runtime_dependencies_only(tmp_path: pathlib.Path) -> None:
    venv.create(tmp_path / "env", with_pip=True)
    python = tmp_path / "env" / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import sys, middlewares, middlewares.testing, middlewares.compression, "
        "middlewares.stores\n"
        "banned = {'starlette', 'fastapi', 'litestar', 'django', 'flask', 'quart', 'httpx', "
        "'uvicorn', 'redis', 'pytest'}\n"
        "print(sorted(banned & set(sys.modules)))"
    )
    result = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout.lower()
    for framework in ("starlette", "fastapi", "redis", "uvicorn"):
        assert f"{framework}==" not in installed
