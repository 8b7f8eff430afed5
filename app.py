"""KV Lens: the router and the shared sidebar, nothing else."""

import streamlit as st

from lib.ui import share, sidebar, state

PAGES = [
    st.Page("pages/home.py", title="The question", icon="❓", url_path="", default=True),
    # pages: end
]


def run() -> None:
    st.set_page_config(page_title="KV Lens", page_icon="🔎", layout="wide")
    state.begin_run()
    navigation = st.navigation(PAGES)
    sidebar.show()
    state.show_notices()
    navigation.run()
    share.share_box()


run()
