"""Running the JavaScript SDK's tools and tests with the machine's Node.js (dev.py installs it when missing)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "clients" / "js"


@cache
def node() -> str:
    """The path of `node` >= 20; fails the test when Node.js is missing or older (dev.py installs it)."""
    found = shutil.which("node")
    assert found, "Node.js >= 20 is needed: `python3 dev.py test` installs it (apt-get install nodejs)"
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, f"Node.js >= 20 is needed, found {version}"
    return found
