"""The guided tour in one session, as a reader follows it: every step from the home page, in
order and then back and forth. Each link must open exactly its view on its first render: the
heading and the numbers of the page follow the link, not what the session showed before."""

import re

from lib import content
from lib.config import PARAMS_BY_NAME
from lib.serve import wait_idle

# What each step's page must say, from its link's parameters (None: the page's title is enough).
SAYS = [
    r"Does a language model start anew",
    r"\d+/16 tokens identical",
    r"Step 20\*?\*? feeds",
    r"What feeds token 8 .* at layer 12",
    r"What feeds token 8 .* at layer 12[\s\S]*token 3",
    r"Layer 12's MLP activation, read from layer 13's keys[\s\S]*Patched at layers 1–29",
    r"What feeds token 10 .* at layer 20",
    r"\(position 4\)",
    r"Layer 20, after .* \(6\)",
    r"Selected cell: token 5, layer 1",
]
BACK_AND_FORTH = [4, 7, 3, 8, 6, 5, 9, 2, 10, 7, 4]


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def shared(page) -> str:
    return page.locator("[data-testid='stSidebar'] code").inner_text().replace("\n", "")


def go_home(page) -> None:
    page.locator("[data-testid='stSidebarNav'] a").first.click()
    page.get_by_text("A guided tour of the debate").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)


def follow(page, number: int) -> None:
    """Click tour step `number` on the home page and wait for its view to finish."""
    step = content.tour()[number - 1]
    links = page.locator("[data-testid='stMain'] [data-testid='stPageLink-NavLink']")
    tour_links = links.count() - len(content.tour())
    links.nth(tour_links + number - 1).click()
    page.wait_for_url(re.compile(rf"/{step.page}(\?|$)"), timeout=300_000)
    wait_idle(page, timeout=600_000)
    page.locator("[data-testid='stSidebar'] code").wait_for(timeout=600_000)
    wait_idle(page, timeout=600_000)


def test_every_tour_step_opens_its_own_view_in_one_session(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = context.new_page()
    page.goto(server)
    wait_idle(page, timeout=600_000)
    for number in [*range(1, len(content.tour()) + 1), *BACK_AND_FORTH]:
        go_home(page)
        follow(page, number)
        step = content.tour()[number - 1]
        assert page.locator("[data-testid='stException']").count() == 0, number
        assert re.search(SAYS[number - 1], main_text(page)), (number, main_text(page)[:600])
        link = shared(page)
        for name, value in step.params.items():
            if value != str(PARAMS_BY_NAME[name].default):  # a default leaves the link
                assert f"{name}={value}" in link, (number, name, link)
        notices = page.locator("[data-testid='stAlertContentWarning']").all_inner_texts()
        assert not [n for n in notices if "times; using" in n or "must be" in n], notices
    context.close()
