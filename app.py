"""KV Lens: the router and the shared sidebar, nothing else.

The pages live in views/, not pages/: Streamlit treats a `pages/` folder as an old-style
multipage app until st.navigation first runs, so a deep link on a fresh server would skip
this router (no sidebar, no link validation).
"""

import streamlit as st

from lib.ui import share, sidebar, state

PAGES = [
    st.Page("views/home.py", title="The question", icon="❓", url_path="", default=True),
    st.Page("views/cache.py", title="Cache on vs off", icon="💾", url_path="cache"),
    st.Page("views/flow.py", title="What feeds a token", icon="🔀", url_path="flow"),
    st.Page("views/plan.py", title="Hidden state and planning", icon="🔭", url_path="plan"),
    st.Page("views/architectures.py", title="Architectures", icon="🔁", url_path="architectures"),
    st.Page("views/tracking.py", title="Tracking, trained", icon="🧮", url_path="tracking"),
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
