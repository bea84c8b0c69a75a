"""Looking at a page in a real browser: headless Chromium, its DOM, console and a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Rendered:
    """What Chromium made of a page: the DOM after load and its console messages."""

    dom: str
    console_errors: list[str]
    screenshot: Path


def chromium() -> str:
    """The Chromium binary; skips (fails under CI) where there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (Debian package chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: .ci/run installs it")
        pytest.skip(reason)
    return found


def playwright_chromium() -> str:
    """The Chromium binary for Playwright; skips (fails under CI) where Playwright for
    Python or Chromium is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "Playwright for Python is not installed (the test extra has it)"
    if found is None:
        reason = "Chromium is not installed (Debian package chromium)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: .ci/run installs it")
        pytest.skip(reason)
    assert found is not None
    return found


def artifacts(name: str) -> Path:
    """Where the screenshots of ``name`` go: never into the checkout unless
    ``CASEWORK_ARTIFACTS`` says so."""
    root = os.environ.get("CASEWORK_ARTIFACTS")
    base = Path(root) if root else Path(tempfile.gettempdir()) / f"casework-artifacts-{os.getuid()}"
    return base / name


def render(page: Path, tmp_path: Path) -> Rendered:
    """Load ``page`` headless: its DOM, console errors and a PNG screenshot."""
    binary = chromium()
    flags = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr",
             "--v=0", "--window-size=1200,1600"]  # fmt: skip
    url = page.resolve().as_uri()
    shot = tmp_path / f"{page.stem}.png"
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    subprocess.run(
        [*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True
    )
    # Chromium logs every console message (errors included) as an INFO "CONSOLE" line;
    # the reports carry no scripts, so any message at all is a fault.
    errors = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(dom.stdout, errors, shot)
