"""Chinese chart labels find a font installed after matplotlib's font list was cached:
no restart of ``serve`` and no deleting of caches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from matplotlib import font_manager

from casework.workflow.reports import charts


@pytest.fixture
def cached_before_the_font() -> Iterator[None]:
    """matplotlib's font list as it was cached before a CJK font was installed: every
    CJK family taken out of it for the test, put back after."""
    manager = font_manager.fontManager
    kept = list(manager.ttflist)
    manager.ttflist = [f for f in kept if f.name not in charts.CJK_FAMILIES]
    charts._found.update(family=None, checked=None)
    yield
    manager.ttflist = kept
    charts._found.update(family=None, checked=None)


def _system_cjk() -> str:
    for path in font_manager.findSystemFonts():
        try:
            if font_manager.FontProperties(fname=path).get_name() in charts.CJK_FAMILIES:
                return path
        except (OSError, RuntimeError, ValueError):
            continue
    pytest.skip("no font with Chinese glyphs on this machine (.ci/run installs one)")


@pytest.mark.usefixtures("cached_before_the_font")
def test_a_font_installed_after_the_cache_is_found_without_a_restart() -> None:
    _system_cjk()
    assert charts.cjk_family() in charts.CJK_FAMILIES
    assert charts.label("东莞长安店") == "东莞长安店"
    assert charts.missing_font_note() is None


@pytest.mark.usefixtures("cached_before_the_font")
def test_the_named_font_file_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    path = _system_cjk()
    monkeypatch.setenv(charts.FONT_ENVIRONMENT, path)
    assert charts.cjk_family() == font_manager.FontProperties(fname=path).get_name()
