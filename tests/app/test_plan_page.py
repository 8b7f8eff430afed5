"""/plan through Streamlit's AppTest: it renders, a link without a cell opens one that shows
something, bad selections are clamped, and a selection change calls no model (not the forward
pass, not the lens, not any torch module)."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import export, generate, lens, trace
from lib.config import DEFAULT_PROMPT
from lib.models import tiny_tokenizer
from tests.app.menus import open_menus

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PROMPT_TOKENS = len(tiny_tokenizer()(DEFAULT_PROMPT).input_ids)


@pytest.fixture
def calls(counting):
    """Every torch module call, and every run of the lens, the trace and the generation."""
    return counting(
        lens=(lens, "logit_lens"), trace=(trace, "run_trace"), generate=(generate, "generate")
    )


@pytest.fixture
def plan_page():
    def run(**query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=300)
        at.query_params.update(query)
        at.switch_page("views/plan.py")
        return at.run()

    return run


def charts(at: AppTest) -> list[dict]:
    return [
        json.loads(element.proto.spec)
        for element in at.main
        if getattr(element, "type", None) == "vega_lite_chart"
    ]


def texts(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.subheader, *at.warning])


def test_renders_and_a_selection_change_calls_no_model(plan_page, calls):
    at = plan_page(model="tiny-random", new="4", token="3", layer="2", k="5")
    assert not at.exception, at.exception
    assert calls["lens"] == 1 and calls["trace"] == 1 and calls["generate"] == 1
    assert calls["modules"] > 0
    assert len(charts(at)) == 5  # output bars, entropy strip, lens heatmap, cell bars, first seen
    assert "Layer 2, after `·` (3)" in texts(at)  # "The cure…": position 3 is the first space
    assert "1 · The distribution the text hides" in [h.value for h in at.header]
    claims = [m.value for m in at.markdown if m.value.startswith("*Claim on this page")]
    assert claims == [
        "*Claim on this page: hidden, not carried.*",
        "*Claim on this page: open question.*",
    ]

    before = dict(calls)
    at.slider(key="token").set_value(6).run()
    at.slider(key="layer").set_value(1).run()
    at.slider(key="k").set_value(12).run()
    assert not at.exception, at.exception
    assert calls == before  # three selection changes: not one model call of any kind
    assert "Layer 1, after `r` (6)" in texts(at)
    assert "**outside the top 12**" in texts(at)
    assert at.query_params["token"] == "6" and at.query_params["k"] == "12"


def test_a_link_without_a_cell_opens_the_prompts_last_position_at_the_middle_layer(
    plan_page, calls
):
    at = plan_page(model="tiny-random", new="4")
    assert not at.exception, at.exception
    assert at.slider(key="token").value == PROMPT_TOKENS - 1 != 0
    assert at.slider(key="layer").value == 2  # 4 rows: the embedding and 3 layers
    assert "token" not in at.query_params and "layer" not in at.query_params
    assert f"Layer 2, after `s` ({PROMPT_TOKENS - 1})" in texts(at)  # the `s` of "is"
    assert not at.warning


def test_out_of_range_selection_is_clamped_with_a_notice(plan_page, calls):
    at = plan_page(model="tiny-random", new="2", token="999", layer="60")
    assert not at.exception, at.exception
    warnings = [warning.value for warning in at.warning]
    assert any("`token` must be 0–" in w for w in warnings), warnings
    assert any("`layer` must be 0–3 here" in w for w in warnings), warnings
    assert at.slider(key="layer").value == 3
    assert "The last position: nothing follows it in this run." in texts(at)


def test_the_table_shows_no_bare_none(plan_page, calls):
    at = plan_page(model="tiny-random", new="6", seed="3")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == 6 and not table.isna().any().any()
    assert not table.astype(str).isin(["None", "nan", "<NA>"]).any().any()


def test_the_real_model_page(plan_page, calls, real):
    at = plan_page(prompt="The cure for cancer is", new="8", token="4")
    assert not at.exception, at.exception
    assert "Layer 15, after `·is` (4)" in texts(at)  # the middle of 31 rows, picked
    assert "Of the 8 that end in the top 10 at the output" in texts(at)
    assert "of their matched tokens" in texts(at)
    heatmap = next(spec for spec in charts(at) if "lens_cell" in json.dumps(spec))
    assert '"fields": ["position", "layer"]' in json.dumps(heatmap)


def test_every_chart_and_the_data_have_an_export_menu_that_computes_nothing_yet(
    plan_page, calls, monkeypatch
):
    rendered = []
    for function in ("chart_png", "chart_svg", "view_json", "table_csv"):
        monkeypatch.setattr(export, function, lambda *args, name=function: rendered.append(name))
    at = plan_page(model="tiny-random", new="4", token="3", layer="2", k="5")
    assert not at.exception, at.exception
    menus = [popover.proto.popover.label for popover in at.get("popover")]
    assert menus == ["Export figure"] * 5 + ["Export data"]
    assert not at.get("download_button")  # drawn when a menu opens
    open_menus(at)
    # Each button's key is its file name with the extension after a dash (lib/ui/draw.py).
    figures = [
        "plan-token3-k5-figoutput",
        "plan-token3-figentropy",
        "plan-token3-layer2-figlens",
        "plan-token3-layer2-k5-figcell",
        "plan-k5-figfirstseen",
    ]
    expected = [f"{name}-{kind}" for name in figures for kind in ("png", "svg")]
    expected += ["plan-token3-layer2-k5-json", "plan-token3-layer2-k5-csv"]
    assert [button.key for button in at.get("download_button")] == expected
    assert rendered == []  # nothing is rendered or serialized until a button is clicked
