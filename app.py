"""KV Lens: the router and the shared sidebar, nothing else.

The pages live in views/, not pages/: Streamlit treats a `pages/` folder as an old-style
multipage app until st.navigation first runs, so a deep link on a fresh server would skip
this router (no sidebar, no link validation).
"""

import streamlit as st

from lib import site
from lib.ui import draw, sidebar, state


def run() -> None:
    st.set_page_config(page_title="KV Lens", page_icon="🔎", layout="wide")
    pages = {
        page.path: st.Page(
            page.file, title=page.title, icon=page.icon, url_path=page.path, default=not page.path
        )
        for page in site.PAGES
    }
    navigation = st.navigation(list(pages.values()))
    resolved = state.begin_run(site.page(navigation.url_path))
    try:
        sidebar.show()
        draw.notices(resolved.notices)
        navigation.run()
        draw.share_box(resolved)
    finally:
        state.end_run()


run()
