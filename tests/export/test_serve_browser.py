"""The page at ``/`` in a real headless browser: type a text, see the label and the scores.

Needs Playwright (``pip install playwright``) and a Chromium: Playwright's own, or the
system's (``apt-get install chromium``); skipped without them. The answers shown are
compared with the in-process ``runtime.Pipeline``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime import Pipeline
from tests import serve_models as sm

pytestmark = pytest.mark.browser
pytest.importorskip("starlette", reason="the serve extra: pip install 'graphcap[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra: pip install 'graphcap[serve]'")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def _launch(p):
    """A headless Chromium: the system's, else Playwright's; skip when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return p.chromium.launch(executable_path=path, args=["--no-sandbox"])
    try:
        return p.chromium.launch()
    except Exception as err:
        pytest.skip(f"no Chromium for Playwright: {str(err).splitlines()[0]}")


def test_the_page_shows_a_pipelines_label_and_scores(tmp_path: Path) -> None:
    sm.save_classifier(tmp_path / "models" / "clf", ("neg", "pos"), max_length=8)
    sm.save_classifier(tmp_path / "models" / "strict", max_length=3, truncation=False)
    want = Pipeline.load(tmp_path / "models" / "clf")("the plot was great")
    with (
        sm.Server(tmp_path / "models", "--reload-interval", "0") as s,
        playwright.sync_playwright() as p,
    ):
        browser = _launch(p)
        page = browser.new_page()
        page.goto(s.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length == 2")
        page.select_option("#model", "clf")
        assert page.inner_text("#task") == "text-classification: neg, pos"
        page.fill("#text", "the plot was great")
        page.click("#run")
        page.wait_for_function("document.getElementById('label').textContent !== ''")
        assert page.inner_text("#label") == want["label"]
        names = page.locator("#scores td.name").all_inner_texts()
        scores = page.locator("#scores td.score").all_inner_texts()
        assert names == [x["label"] for x in want["scores"]]
        assert scores == [f"{x['score']:.4f}" for x in want["scores"]]
        page.select_option("#model", "strict")
        page.fill("#text", "a great great film")
        page.click("#run")
        page.wait_for_selector("#status.error")
        assert "more than max_length=3" in page.inner_text("#status")
        browser.close()
