from lib.settings import from_environment


def test_defaults_fit_a_small_host():
    settings = from_environment({})
    assert not settings.workshop
    assert (settings.max_prompt_tokens, settings.max_new_tokens) == (128, 128)
    assert settings.weights == "float32" and settings.starter_prompt == ""


def test_workshop_mode_lowers_the_sizes_and_sets_a_starter_prompt():
    settings = from_environment({"KV_LENS_WORKSHOP": "1"})
    assert settings.workshop and settings.max_new_tokens == 48
    assert settings.starter_prompt.startswith("Alice")


def test_bad_values_fall_back_or_clamp():
    settings = from_environment(
        {
            "KV_LENS_MAX_NEW_TOKENS": "lots",
            "KV_LENS_MAX_PROMPT_TOKENS": "99999",
            "KV_LENS_WEIGHTS": "int4",
        }
    )
    assert settings.max_new_tokens == 128 and settings.max_prompt_tokens == 512
    assert settings.weights == "float32"
