import dataclasses
import io
import json
import xml.etree.ElementTree as ElementTree

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from lib import site
from lib.config import ViewConfig
from lib.export import chart_png, chart_svg, table_csv, view_json, view_name

CHART = (
    alt.Chart(pd.DataFrame({"token": [0, 1, 2], "value": [0.5, 0.2, 0.3]}))
    .mark_bar()
    .encode(x="token:O", y="value:Q")
)


def test_view_names_are_safe_file_names():
    assert view_name("flow", ("token", 5), ("layer", 12)) == "flow-token5-layer12"
    assert view_name("plan", ("head", "a/b c")) == "plan-heada-b-c"


def test_png_decodes_to_an_image():
    image = Image.open(io.BytesIO(chart_png(CHART)))
    image.load()
    assert image.format == "PNG" and image.width > 50 and image.height > 50


def test_svg_parses_and_holds_the_marks():
    root = ElementTree.fromstring(chart_svg(CHART))
    assert root.tag.endswith("svg")
    assert len([node for node in root.iter() if node.tag.endswith("path")]) >= 3


@dataclasses.dataclass(frozen=True)
class Page:
    table: pd.DataFrame
    grid: np.ndarray
    ratio: float
    heavy: np.ndarray = dataclasses.field(metadata={"export": False})


def test_json_is_the_page_model_with_the_configuration_that_made_it():
    cfg = ViewConfig(prompt="Hi", new=8, token=3, from_=2, k=5)
    page = Page(pd.DataFrame({"a": [1, 2]}), np.eye(2), float("inf"), np.zeros(10**6))
    document = json.loads(view_json(site.page("flow"), cfg, page))
    assert document["page"] == "flow" and document["model"] == "smollm2-135m"
    assert document["config"]["token"] == 3 and document["config"]["from"] == 2
    assert "k" not in document["config"]  # /plan's, not this page's
    assert document["query"] == {"prompt": "Hi", "new": "8", "token": "3", "from": "2"}
    assert document["data"] == {
        "table": [{"a": 1}, {"a": 2}],
        "grid": [[1.0, 0.0], [0.0, 1.0]],
        "ratio": None,  # JSON has no infinity
    }


def test_csv_round_trips():
    frame = pd.DataFrame({"token": ["a,b", "c"], "p": [0.5, 0.25]})
    assert pd.read_csv(io.StringIO(table_csv(frame))).equals(frame)


def test_charts_drawn_at_the_column_width_render_at_a_fixed_width():
    for stretched in (CHART, CHART.properties(width="container")):
        root = ElementTree.fromstring(chart_svg(stretched))
        assert float(root.get("width")) > 600
