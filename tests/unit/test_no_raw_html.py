"""Text from users and the model is never rendered as HTML: no page or UI module allows it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_code_renders_raw_html():
    sources = [*ROOT.glob("views/*.py"), *ROOT.glob("lib/**/*.py"), ROOT / "app.py"]
    offenders = [str(path) for path in sources if "unsafe_allow_html=True" in path.read_text()]
    assert sources and offenders == []
