"""/tracking's first visit: the page leads with tables read from the shipped records, so a
visit costs loading five small models and one live run of the program shown.

`tracking_first_visit_s`: a first visit of /tracking through Streamlit's AppTest with every
cached resource cleared (as after a server start). `tracking_page_ratio`: that visit ÷ the bare
work under it, loading the five models from safetensors and running the program through them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from bench.common import report
from lib import tracking

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def first_visit() -> float:
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=600)
    at.switch_page("views/tracking.py")
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception, at.exception
    return seconds


def bare_work() -> float:
    start = time.perf_counter()
    shipped = {name: tracking.load_shipped(name) for name in tracking.shipped_names()}
    program = tracking.random_program(np.random.default_rng([0, 30]), 30)
    tracking.live_run(shipped, program)
    return time.perf_counter() - start


def run() -> None:
    first_visit()  # imports and Streamlit's own first run
    visits = [first_visit() for _ in range(3)]
    bare = [bare_work() for _ in range(3)]
    report("tracking_first_visit_s", float(np.median(visits)))
    report("tracking_page_ratio", float(np.median(visits) / np.median(bare)))


if __name__ == "__main__":
    run()
