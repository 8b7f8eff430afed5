"""`make warm`: compute the preset prompts and every tour link before anyone asks.

The results go to the folder every server process reads (`lib.ui.resources.results_on_disk`'s
default, or $KV_LENS_RESULTS_DIR), so a workshop or a shared link starts hot: the first reader
of each view waits for nothing but drawing. Run it with the app's settings (the same
KV_LENS_WEIGHTS and limits): results are keyed by everything that determines them.

    python -m lib.warm            # what `make warm` runs
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lib import config, content, models, site, toy
from lib.lab import Lab
from lib.pages.architectures import architectures_page
from lib.pages.cache import cache_page
from lib.pages.flow import flow_page
from lib.pages.home import home_page
from lib.pages.plan import plan_page
from lib.pages.readable import readable_page
from lib.readable.pairs import pair_presets
from lib.settings import SETTINGS
from lib.store import DiskTier, ResultStore

MODEL_PAGES = ("", "cache", "flow", "plan", "readable")  # computed for each preset prompt


def builders(store: ResultStore) -> dict[str, Callable]:
    """How to compute each page's view into `store`."""

    def lab_of(cfg: config.ViewConfig, page: str) -> Lab:
        dtype = cfg.dtype if page == "cache" else SETTINGS.weights
        return Lab(cfg.model, dtype, store, load=loaded)

    loaded = _loader()
    return {
        "": lambda cfg: home_page(cfg, lab_of(cfg, "")),
        "cache": lambda cfg: cache_page(cfg, lab_of(cfg, "cache")),
        "flow": lambda cfg: flow_page(cfg, lab_of(cfg, "flow")),
        "plan": lambda cfg: plan_page(cfg, lab_of(cfg, "plan")),
        "readable": lambda cfg: readable_page(cfg, lab_of(cfg, "readable")),
        "architectures": lambda cfg: architectures_page(
            cfg, lambda *grid: toy.checked(store, *grid)
        ),
    }


def _loader() -> Callable[[str, str], models.LoadedModel]:
    """Each model once, whatever the number of views."""
    loaded: dict[tuple[str, str], models.LoadedModel] = {}

    def load(model_id: str, dtype: str) -> models.LoadedModel:
        if (model_id, dtype) not in loaded:
            loaded[model_id, dtype] = models.load(model_id, dtype)
        return loaded[model_id, dtype]

    return load


def views() -> Iterator[tuple[str, dict[str, str]]]:
    """(page path, link parameters) of every view to warm: the tour, the preset prompts, then
    /readable's example pairs (the probe fit, once, comes with the first /readable view)."""
    for step in content.tour():
        yield step.page, step.params
    for preset in content.presets():
        for page in MODEL_PAGES:
            yield page, {"prompt": preset.prompt}
    for pair in pair_presets():
        yield "readable", {"clean": pair.clean, "corrupt": pair.corrupt}


def main() -> None:
    folder = Path(SETTINGS.results_dir or models.cache_dir() / "results")
    if SETTINGS.results_dir == "off":
        raise SystemExit("KV_LENS_RESULTS_DIR is off: there is nowhere to keep the results.")
    folder.mkdir(parents=True, exist_ok=True)
    disk = DiskTier(folder, SETTINGS.max_disk_mb << 20)
    store = ResultStore(SETTINGS.max_cache_mb << 20, disk)
    build = builders(store)
    todo = list(views())
    for number, (path, params) in enumerate(todo, start=1):
        page = site.page(path)
        cfg = config.from_query({k: [v] for k, v in params.items()}, page).config
        start = time.perf_counter()
        build[path](cfg)
        seconds = time.perf_counter() - start
        print(f"[{number}/{len(todo)}] {page.link} {params}: {seconds:.1f} s", flush=True)
    disk.flush()
    print(f"Warm: {len(todo)} views in {folder} ({disk.volume() >> 20} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
