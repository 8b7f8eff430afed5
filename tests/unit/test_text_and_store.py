from lib.store import LruStore
from lib.ui.text import continuation, escape_markdown, human_bytes, token_chips


def test_markdown_and_html_are_escaped():
    hostile = "<script>alert(1)</script> ![x](http://e.com/a.png) **b** $x$"
    escaped = escape_markdown(hostile)
    for raw in ["<script>", "![x](", "**b**", "$x$"]:
        assert raw not in escaped


def test_token_chips_cannot_break_out_of_code_spans():
    assert token_chips(["a`b", "c"]) == "`aˋb` `c`"


def test_continuation_bold_starts_on_a_word():
    assert continuation("Hi", " there", done=True) == "Hi **there**"
    assert continuation("Hi", "", done=False) == "Hi ▌"


def test_human_bytes():
    assert human_bytes(512) == "512 B"
    assert human_bytes(46080) == "45.0 KB"


def test_lru_store_evicts_the_least_recent():
    store = LruStore[int](max_entries=2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1
    store.put("c", 3)
    assert store.get("b") is None and store.get("a") == 1 and len(store) == 2


def test_continuation_bold_never_spans_a_line_break():
    assert continuation("A", " b\n\nc", done=True) == "A **b**  \n  \n**c**"
