from pathlib import Path

from lib.config import parameters_markdown
from lib.tracking.records import records_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_every_parameter_as_the_code_defines_it():
    text = README.read_text()
    documented = text.split("<!-- parameters:start -->\n")[1].split("\n<!-- parameters:end -->")[0]
    assert documented == parameters_markdown()


def test_readme_names_the_two_commands_first():
    text = README.read_text()
    assert text.index("make run") < text.index("make test") < text.index("## ")


def test_readme_shows_the_tracking_records_as_shipped():
    text = README.read_text()
    documented = text.split("<!-- tracking:start -->\n")[1].split("\n<!-- tracking:end -->")[0]
    assert documented == records_markdown()
