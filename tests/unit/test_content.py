"""Prose as data: every template of content/ is used by its page, asks only for what the page
gives, and leaves no placeholder unfilled in what a page shows."""

import dataclasses
import re
import string
from pathlib import Path

import pytest

from lib import content, site

ROOT = Path(__file__).resolve().parents[2]
PAGE_TEXTS = sorted(path.stem for path in (ROOT / "content").glob("*.toml"))
SOURCES = {"common": (ROOT / "lib" / "content.py", ROOT / "lib" / "pages" / "common.py")}
DATA = {"readable": "pairs."}  # tables of data, not templates: lib/readable/pairs.py reads them


def source_of(page: str) -> str:
    paths = SOURCES.get(page, (ROOT / "lib" / "pages" / f"{page}.py",))
    return "\n".join(path.read_text() for path in paths)


def test_every_page_has_its_texts():
    assert {page.name for page in site.PAGES} <= set(PAGE_TEXTS)


@pytest.mark.parametrize("page", [p for p in PAGE_TEXTS if p not in {"presets", "tour"}])
def test_every_template_parses_and_is_used_by_its_page(page):
    code = source_of(page)
    for key, template in content.templates(page).items():
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", field) for field in fields), (key, fields)
        prefix = key.rpartition(".")[0]
        used = f'"{key}"' in code or (prefix and re.search(rf'f"{re.escape(prefix)}\.{{', code))
        used = used or (page in DATA and key.startswith(DATA[page]))
        assert used, f"content/{page}.toml [{key}] is used by no code"


def test_a_missing_placeholder_is_an_error_that_names_the_template():
    with pytest.raises(KeyError, match=r"content/home.toml \[prompt_heading\] asks for"):
        content.fill("home", "prompt_heading")


def texts_of(value) -> list[str]:
    """Every string a page model holds, through dataclasses, mappings and sequences."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value):
        return [t for f in dataclasses.fields(value) for t in texts_of(getattr(value, f.name))]
    if isinstance(value, dict):
        return [t for item in value.values() for t in texts_of(item)]
    if isinstance(value, list | tuple):
        return [t for item in value for t in texts_of(item)]
    return []


def test_the_tour_sides_and_links_agree_with_the_table_in_content():
    sides = content.tour_sides()
    for step in content.tour():
        assert step.side in sides, step.claim
        assert step.page in sides[step.side]["pages"], (step.claim, step.page)
        assert step.page in site.BY_PATH
        if step.side == "carried" and "from" in step.params:
            assert int(step.params["from"]) >= 1  # layer 0's K/V are the word, not a state


@pytest.mark.parametrize("page", ["home", "cache"])
def test_a_page_model_leaves_no_placeholder_unfilled(tiny, page):
    from lib.config import ViewConfig
    from lib.lab import Lab
    from lib.pages.cache import cache_page
    from lib.pages.home import home_page

    build = {"home": home_page, "cache": cache_page}[page]
    model = build(ViewConfig(model="tiny-random", new=4, offgrid="on"), Lab.direct(tiny))
    shown = texts_of(model)
    assert shown and not [text for text in shown if re.search(r"\{[a-z_]+(:[^}]*)?\}", text)]
