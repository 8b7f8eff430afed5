"""Markdown built from what users and the model wrote: escaped, and unambiguous."""

from lib.markdown import NEWLINE, continuation, escape_markdown, human_bytes, token_chips


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


def test_a_generated_line_break_is_marked_so_a_repeated_prompt_reads_as_generated():
    """SmolLM2 continues "The cure for cancer is" with "… diet.\\n\\nThe cure for cancer is":
    the second line is the model's, and must not look like the prompt drawn twice."""
    shown = continuation("The cure for cancer is", " a diet.\n\nThe cure for cancer is", True)
    lines = shown.split("  \n")
    assert lines[0].startswith("The cure for cancer is **") and lines[0].endswith(f"{NEWLINE}**")
    assert lines[1] == f"**{NEWLINE}**"
    assert lines[2] == "**The cure for cancer is**"  # bold: generated, not the prompt
    assert all(line.count("**") % 2 == 0 for line in lines)  # no bold span crosses a break


def test_human_bytes():
    assert human_bytes(512) == "512 B"
    assert human_bytes(46080) == "45.0 KB"
