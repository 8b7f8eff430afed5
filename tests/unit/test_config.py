from hypothesis import given
from hypothesis import strategies as st

from lib import config, models, site
from lib.config import MAX_NEW_TOKENS, ViewConfig, from_query, to_query


def test_empty_query_gives_defaults_without_notices():
    validated = from_query({})
    assert validated.config == ViewConfig()
    assert validated.notices == ()


def test_valid_values_are_taken_as_given():
    query = {"prompt": ["Hello"], "new": ["8"], "head": ["3"], "offgrid": ["on"], "seed": ["7"]}
    validated = from_query(query)
    assert validated.notices == ()
    assert validated.config.prompt == "Hello"
    assert (validated.config.new, validated.config.head, validated.config.seed) == (8, 3, 7)
    assert validated.config.offgrid == "on"


def test_out_of_range_numbers_are_clamped_with_a_notice():
    validated = from_query({"new": ["9999"], "layer": ["-3"]})
    assert validated.config.new == MAX_NEW_TOKENS
    assert validated.config.layer == 0
    assert len(validated.notices) == 2


def test_unusable_values_fall_back_to_defaults_with_a_notice():
    validated = from_query({"new": ["abc"], "offgrid": ["maybe"], "head": ["x"], "dtype": [""]})
    assert validated.config == ViewConfig()
    assert len(validated.notices) == 4


def test_unknown_and_path_like_models_are_refused():
    for hostile in ["../../etc/passwd", "/tmp/model", "gpt2", "smollm2-135m/.."]:
        validated = from_query({"model": [hostile]})
        assert validated.config.model == "smollm2-135m"
        assert "Unknown model" in validated.notices[0]


def test_repeated_and_unknown_parameters_are_reported():
    validated = from_query({"new": ["5", "7"], "bogus": ["1"]})
    assert validated.config.new == 7
    assert any("2 times" in notice for notice in validated.notices)
    assert any("bogus" in notice for notice in validated.notices)


def test_prompts_are_cleaned():
    empty = from_query({"prompt": ["   \n "]})
    assert empty.config.prompt == config.DEFAULT_PROMPT and empty.notices
    control = from_query({"prompt": ["a\x00b\x1bc"]})
    assert control.config.prompt == "abc" and control.notices
    long = from_query({"prompt": ["x" * 20_000]})
    assert len(long.config.prompt) == config.MAX_PROMPT_CHARS and long.notices
    friendly = from_query({"prompt": ["שלום 🙂 naïve\nline"]})
    assert friendly.config.prompt == "שלום 🙂 naïve\nline" and not friendly.notices


def test_to_query_lists_only_non_default_settings():
    assert to_query(ViewConfig()) == {}
    assert to_query(ViewConfig(new=8, head=2)) == {"new": "8", "head": "2"}


def values_of(param: config.Param) -> st.SearchStrategy:
    """Every value a parameter documents as accepted."""
    if isinstance(param, config.IntParam):
        numbers = st.integers(param.low, param.high)
        return st.one_of(st.none(), numbers) if param.optional else numbers
    if isinstance(param, config.HeadParam):
        return st.one_of(st.just("all"), st.integers(0, param.high))
    if isinstance(param, config.ChoiceParam):
        return st.sampled_from(param.choices)
    if isinstance(param, config.ModelParam):
        return st.sampled_from(sorted(models.registry()))
    assert isinstance(param, config.TextParam)
    return st.text(min_size=1, max_size=50).filter(
        lambda text: from_query({"prompt": [text]}).notices == ()
    )


settings = st.builds(ViewConfig, **{param.attr: values_of(param) for param in config.PARAMS})


@given(settings)
def test_every_setting_round_trips_through_the_url(view):
    validated = from_query(to_query(view))
    assert validated.notices == ()
    assert validated.config == view


@given(st.dictionaries(st.text(max_size=12), st.lists(st.text(max_size=40), max_size=3)))
def test_arbitrary_query_strings_never_raise(query):
    validated = from_query(query)
    assert isinstance(validated.config, ViewConfig)


def test_clamp_index():
    assert config.clamp_index("token", 3, 5) == (3, None)
    value, notice = config.clamp_index("token", 9, 5)
    assert value == 4 and "0–4" in notice


def test_a_page_reads_only_its_parameters_and_the_sidebars():
    flow = site.page("flow")
    carried = from_query({"k": ["5"], "statements": ["40"], "token": ["3"]}, flow)
    assert carried.notices == ()  # another page's parameters: ignored, not reported
    assert carried.config.k == ViewConfig().k and carried.config.token == 3
    tracking = site.page("tracking")
    kept = from_query({"prompt": ["Hi"], "statements": ["40"]}, tracking)
    assert kept.query(tracking) == {"prompt": "Hi", "statements": "40"}  # the URL keeps both
    assert to_query(kept.config, tracking) == {"statements": "40"}  # the link carries its own


def test_retired_parameters_of_old_links_are_ignored_quietly():
    assert from_query({"arch": ["rnn"], "cache": ["off"]}).notices == ()


def test_only_plain_whole_numbers_count():
    for text in ["1e3", "0x10", "1_000", "٣", "3.0", "inf", "nan", "+", "9" * 13]:
        validated = from_query({"new": [text]})
        assert validated.config.new == ViewConfig().new and validated.notices, text
    assert from_query({"new": [" +7 "]}).config.new == 7
