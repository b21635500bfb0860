#!/usr/bin/env python3
"""Set up a virtualenv in .venv and run roomlog or its checks: `python3 dev.py serve|test|bench`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed-pyproject"
JS = ROOT / "clients" / "js"
CHROMIUM = "/usr/bin/chromium"  # Debian's, driven by Playwright in tests/browser
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"


def ensure_venv() -> None:
    """Create .venv and install roomlog with its dev extras, and the Python SDK, when a pyproject.toml changed."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = (ROOT / "pyproject.toml").read_text() + (ROOT / "clients/python/pyproject.toml").read_text()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"])
    # The Python SDK is a package of its own; the suite tests it against the live server.
    run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "-e", str(ROOT / "clients/python")])
    STAMP.write_text(wanted)


def ensure_system_packages() -> None:
    """Install what the JavaScript SDK and browser tests need from Debian when missing: Node.js and Chromium."""
    wanted = [package for package, present in (
        ("nodejs", shutil.which("node") is not None),
        ("npm", shutil.which("npm") is not None),
        ("chromium", Path(CHROMIUM).exists()),
        ("fonts-noto-color-emoji", Path(EMOJI_FONT).exists()),  # reactions in the console's screenshots
    ) if not present]
    if not wanted:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        # Only the SDK and browser tests need them; they fail saying so, the other checks still run.
        print(f"missing {', '.join(wanted)}: install them (Debian: apt-get install -y {' '.join(wanted)})",
              file=sys.stderr)
        return
    os.environ.setdefault("DEBIAN_FRONTEND", "noninteractive")  # CI has no terminal to answer a prompt
    run(["apt-get", "update", "-q"])
    run(["apt-get", "install", "-y", "-q", *wanted])


def ensure_js_tools() -> None:
    """Install the JavaScript SDK's development tools (TypeScript, to check its declarations) from its lock file."""
    lock = JS / "package-lock.json"
    stamp = JS / "node_modules" / ".installed-lock"
    if stamp.exists() and stamp.read_text() == lock.read_text():
        return
    if shutil.which("npm") is None:
        print("missing npm: the JavaScript SDK's type check will fail", file=sys.stderr)
        return
    run(["npm", "--prefix", str(JS), "ci", "--no-audit", "--no-fund"])
    stamp.write_text(lock.read_text())


def run(cmd: list[str]) -> None:
    """Run one command from the repo root with the venv first on PATH; exit on failure."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    if code != 0:
        sys.exit(code)


def serve(args: list[str]) -> None:
    """Run `roomlog serve`; a Ctrl-C reaches it directly, so wait for it to stop and exit with its code."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    child = subprocess.Popen([str(BIN / "roomlog"), "serve", *args], cwd=ROOT, env=env)
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            continue  # the terminal sent SIGINT to roomlog as well: it is shutting down
    sys.exit(128 - code if code < 0 else code)


def main() -> None:
    """Dispatch the sub-command."""
    task, *rest = sys.argv[1:] or ["help"]
    if task not in {"serve", "test", "bench", "shell"}:
        sys.exit("usage: python3 dev.py serve [roomlog serve flags] | test [pytest args] | bench NAME")
    ensure_venv()
    if task == "serve":
        serve(rest)
    elif task == "test":
        ensure_system_packages()
        ensure_js_tools()
        run([str(BIN / "ruff"), "check", "."])
        run([str(BIN / "mypy")])
        run([str(BIN / "pytest"), *rest])
    elif task == "bench":
        run([str(BIN / "python"), *rest])


if __name__ == "__main__":
    main()
