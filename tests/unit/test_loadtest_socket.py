"""The load test's browser-tab client, on hand-made protocol messages: what a tab shows and
sends back, and how it describes a finished view for the load test's checks."""

from __future__ import annotations

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.ButtonGroup_pb2 import ButtonGroup
from streamlit.proto.Exception_pb2 import Exception as ExceptionProto
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.TextArea_pb2 import TextArea

from bench import loadtest as lt
from bench.loadtest_agent import problems, selection_move
from bench.loadtest_socket import (
    Widget,
    shown_values,
    snapshot,
    url_value,
    user_key,
    widget_states,
)


def group(key: str, options: list[str], default: int = 0, **fields) -> ButtonGroup:
    proto = ButtonGroup(id=f"$$ID-abc123-{key}", default=[default], query_param_key=key, **fields)
    for option in options:
        proto.options.add(content=option)
    return proto


def test_keys_come_from_keyed_widget_ids():
    assert user_key("$$ID-0123abcd-kvhead") == "kvhead"
    assert user_key("$$ID-0123abcd-with-dashes") == "with-dashes"
    assert user_key("plain-id") == ""


def test_url_values_take_each_widgets_state_form():
    assert url_value("button_group", ["1"]) == ["1"]
    assert url_value("slider", ["8"]) == [8.0]
    assert url_value("number_input", ["3"]) == 3.0
    assert url_value("checkbox", ["true"]) is True
    assert url_value("text_area", ["Hello"]) == "Hello"


def test_a_new_widget_shows_the_url_then_keeps_its_value_until_the_server_sets_one():
    prompt = TextArea(id="$$ID-1-prompt", default="", query_param_key="prompt")
    layer = Slider(id="$$ID-2-layer", default=[15.0], query_param_key="layer")
    kvhead = group("kvhead", ["0", "1", "2"])
    first = [("text_area", prompt), ("slider", layer), ("button_group", kvhead)]
    shown = shown_values(first, {}, "prompt=Hello&kvhead=2")
    assert [widget.value for widget in shown.values()] == ["Hello", [15.0], ["2"]]

    # A rerun that no longer passes the slider's default: the tab keeps what it showed.
    rerun = [("text_area", prompt), ("slider", Slider(id="$$ID-2-layer", default=[0.0]))]
    kept = shown_values(rerun, shown, "")
    assert kept["$$ID-2-layer"].value == [15.0] and "$$ID-abc123-kvhead" not in kept

    # A value the server sets in a run wins over the tab's.
    forced = Slider(id="$$ID-2-layer", default=[0.0], value=[3.0], set_value=True)
    assert shown_values([("slider", forced)], shown, "")["$$ID-2-layer"].value == [3.0]


def test_every_widget_is_sent_in_its_own_state_form():
    seed = NumberInput(id="$$ID-3-seed", data_type=NumberInput.INT)
    width = NumberInput(id="$$ID-4-width", data_type=NumberInput.FLOAT)
    shown = {
        "$$ID-1-prompt": Widget("text_area", TextArea(), "Hello"),
        "$$ID-2-layer": Widget("slider", Slider(), [15.0]),
        "$$ID-abc123-kvhead": Widget("button_group", ButtonGroup(), "1"),
        "$$ID-3-seed": Widget("number_input", seed, 7.0),
        "$$ID-4-width": Widget("number_input", width, 2.5),
        "$$ID-5-empty": Widget("selectbox", None, None),  # no value: not sent
    }
    states = {state.id: state for state in widget_states(shown)}
    assert set(states) == set(shown) - {"$$ID-5-empty"}
    assert states["$$ID-1-prompt"].string_value == "Hello"
    assert list(states["$$ID-2-layer"].double_array_value.data) == [15.0]
    assert list(states["$$ID-abc123-kvhead"].string_array_value.data) == ["1"]
    assert states["$$ID-3-seed"].int_value == 7
    assert states["$$ID-4-width"].double_value == 2.5


def test_a_finished_view_reads_like_an_agent_snapshot():
    kvhead = group("kvhead", ["0", "1", "2"])
    locked = group("dtype", ["float32", "bfloat16"], disabled=True)
    elements = [
        ("markdown", None),
        ("button_group", kvhead),
        ("button_group", locked),
        ("vega_lite_chart", None),
        ("alert", Alert(body="fine", format=Alert.INFO)),
    ]
    shown = shown_values(elements, {}, "prompt=p&new=8")
    clean = snapshot(elements, shown, "FINISHED_SUCCESSFULLY", "cache", "prompt=p&new=8")
    assert problems(clean, "cache", {"prompt": "p", "new": "8"}) == []
    assert selection_move(clean, lt.SELECTIONS["cache"]) == ("kvhead", "1")
    assert [action["key"] for action in clean["actions"]] == ["kvhead"]  # not the locked one

    failed = elements + [
        ("alert", Alert(body="The model is not available.", format=Alert.ERROR)),
        ("exception", ExceptionProto(type="ValueError", message="bad")),
    ]
    broken = snapshot(failed, shown, "FINISHED_WITH_COMPILE_ERROR", "flow", "prompt=q")
    found = problems(broken, "cache", {"prompt": "p", "new": "8"})
    assert found == [
        "status 'FINISHED_WITH_COMPILE_ERROR'",
        "error: The model is not available.",
        "exception: ValueError: bad",
        "page 'flow' instead of 'cache'",
        "URL parameter prompt=['q'] instead of 'p'",
        "URL parameter new=None instead of '8'",
    ]


def test_a_tab_that_cannot_connect_is_an_error_of_its_visit():
    record = lt.visit("http://127.0.0.1:1", lt.View("cache", {"prompt": "p"}), 2)
    assert record.opened is None and len(record.problems) == 1
