"""The pages of the app: where each is served, its script, and the URL parameters it reads.

The one place that names a page. The router, the home page's links, the tour, the share box and
the tests all read it, so a page cannot be renamed in one place and forgotten in another, and a
link can carry exactly the parameters its page understands.
"""

from __future__ import annotations

from dataclasses import dataclass

RUN = ("prompt", "model", "new", "seed")  # what decides the model's run: prompt and continuation
SIDEBAR = ("prompt", "model", "new")  # drawn on every page, so they travel between pages


@dataclass(frozen=True)
class PageInfo:
    path: str  # URL path; "" is the home page
    title: str
    icon: str
    params: tuple[str, ...]  # URL parameters that change what this page shows (and its link)

    @property
    def url_params(self) -> tuple[str, ...]:
        """What the URL keeps on this page: its own parameters, and the sidebar's, which every
        page draws and which must survive a visit to a page that does not read them."""
        return self.params + tuple(name for name in SIDEBAR if name not in self.params)

    @property
    def file(self) -> str:
        """The view script, relative to the repository root."""
        return f"views/{self.path or 'home'}.py"

    @property
    def name(self) -> str:
        """A word for file names and exports: `home`, `cache`, …"""
        return self.path or "home"

    @property
    def link(self) -> str:
        return f"/{self.path}"


PAGES: tuple[PageInfo, ...] = (
    PageInfo("", "The question", "❓", RUN),
    PageInfo(
        "cache",
        "Cache on vs off",
        "💾",
        (*RUN, "dtype", "step", "layer", "kvhead", "offgrid"),
    ),
    PageInfo(
        "flow",
        "What feeds a token",
        "🔀",
        (*RUN, "token", "layer", "head", "agg", "weight", "src", "from", "to", "edit", "other"),
    ),
    PageInfo("plan", "Hidden state and planning", "🔭", (*RUN, "token", "layer", "k")),
    PageInfo(
        "readable",
        "What later tokens can read",
        "🔬",
        (*RUN, "layer", "clean", "corrupt", "from", "to"),
    ),
    PageInfo(
        "architectures",
        "Architectures",
        "🔁",
        ("tokens", "layers", "width", "token", "layer", "generation"),
    ),
    PageInfo("tracking", "Tracking, trained", "🧮", ("statements", "pseed", "program")),
)
BY_PATH = {page.path: page for page in PAGES}


def page(path: str) -> PageInfo:
    """The page served at `/path` (leading and trailing slashes ignored)."""
    return BY_PATH[path.strip("/")]
