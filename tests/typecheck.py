"""Type-check a snippet of user code with mypy --strict, as a user's CI would."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent


def mypy_strict(code: str, directory: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run ``mypy --strict`` on ``code`` written to a file in ``directory``."""
    path = directory / "user_code.py"
    path.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
