"""Two replicas behind the sticky proxy (compose.yaml): two browser sessions open the same link,
each is served whole (page, files, WebSocket) by its own replica, and both replicas share the
results volume."""

import uuid

import pytest

from lib.serve import free_port, wait_idle
from tests.container import docker

pytestmark = pytest.mark.container

LINK = "/cache?new=2"
CONCURRENT_LINK = "/cache?new=16"
RESULTS = "/var/cache/kv-lens/results"  # $KV_LENS_CACHE/results in the image


def computed_lines(log: str) -> list[str]:
    """The computations a replica reports on its stderr (lib/store.py's `log_computed`)."""
    return [line for line in log.splitlines() if "kv-lens: computed " in line]


def start_session(browser, url: str) -> dict:
    """Load `url` in a fresh browser context (its script run goes on); return the context, and
    which replica (the proxy's X-Upstream header) answered the page and each other request."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    upstreams: set[str | None] = set()
    page.on("response", lambda response: upstreams.add(response.headers.get("x-upstream")))
    answer = page.goto(url)
    return {
        "context": context,
        "page": page,
        "upstream": answer.headers.get("x-upstream"),
        "upstreams": upstreams,
    }


def finish_session(session: dict, shown: str) -> dict:
    """Wait for the session's view, which shows `shown`; note the session's cookies."""
    page = session["page"]
    wait_idle(page, timeout=300_000)
    page.locator("[data-testid='stMain']").get_by_text(shown).first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    return session | {"cookies": {c["name"] for c in session["context"].cookies()}}


def open_session(browser, url: str) -> dict:
    return finish_session(start_session(browser, url), "2/2 tokens identical")


def test_two_sessions_of_one_link_land_on_two_replicas_that_share_results(
    app_image, proxy_image, browser
):
    project = f"kvlenstest{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {"KV_LENS_PORT": str(port), "KV_LENS_BIND": "127.0.0.1", "KV_LENS_REPLICAS": "2"}
    base = f"http://127.0.0.1:{port}"
    sessions: list[dict] = []
    replicas: list[str] = []
    try:
        docker.compose(project, env, "up", "--detach", "--no-build")
        replicas = docker.service_containers(project, "app")
        assert len(replicas) == 2
        docker.wait_for(lambda: docker.http_ok(f"{base}/_stcore/health"), "proxy health", 120)

        # Both replicas mount the one results volume, writable by the app's non-root user.
        volumes = [
            {m["Name"] for m in docker.mounts(r) if m["Destination"] == RESULTS} for r in replicas
        ]
        assert len(volumes[0]) == 1 and volumes[0] == volumes[1]
        probe = f"{RESULTS}/.probe-{project}"
        docker.docker("exec", replicas[0], "sh", "-c", f"echo shared > {probe}")
        assert docker.docker("exec", replicas[1], "cat", probe).strip() == "shared"
        docker.docker("exec", replicas[1], "rm", probe)

        # Session 1, then session 2, on the same link. Round robin gives a new visitor the next
        # replica; the cookie keeps every later request of a session (files, WebSocket) there.
        websockets: list[dict[str, int]] = []
        for _ in range(2):
            session = open_session(browser, f"{base}{LINK}")
            assert session["upstream"] and session["upstreams"] == {session["upstream"]}
            assert "KVLENS_REPLICA" in session["cookies"]
            sessions.append(session)
            websockets.append({r: len(docker.lasting_peers(r)) for r in replicas})
        first, second = sessions
        assert first["upstream"] != second["upstream"]

        # The WebSocket of session 1 is on one replica; session 2 adds one on the other.
        assert sorted(websockets[0].values()) == [0, 1]
        assert websockets[1] == {r: 1 for r in replicas}

        # Which replica did what, for the checks on shared results (their logs, by replica).
        served_first = next(r for r, n in websockets[0].items() if n == 1)
        served_second = next(r for r in replicas if r != served_first)
        logs = {r: docker.save_logs(r) for r in replicas}
        assert "Traceback" not in logs[served_first] + logs[served_second]
        # lib/store.py writes one `kv-lens: computed <kind> <digest> <s>` line per computation:
        # the first replica ran the model for the link, the second read it all from the volume.
        computed = {r: computed_lines(logs[r]) for r in replicas}
        assert computed[served_first], f"{served_first} computed nothing:\n{logs[served_first]}"
        assert computed[served_second] == [], (
            f"{served_second} recomputed what {served_first} had stored: {computed[served_second]}"
        )

        # Two new visitors open a new link at the same moment, one on each replica: the first
        # to ask claims each result in the volume, the other waits for it there. 16 tokens take
        # seconds to compute, so the second session asks while the first computes.
        at_once = [start_session(browser, f"{base}{CONCURRENT_LINK}") for _ in range(2)]
        sessions += at_once
        at_once = [finish_session(session, "When the cache pays") for session in at_once]
        assert at_once[0]["upstream"] != at_once[1]["upstream"]
        before = {r: len(computed[r]) for r in replicas}
        logs = {r: docker.save_logs(r) for r in replicas}
        assert "Traceback" not in "".join(logs.values())
        new_lines = [line for r in replicas for line in computed_lines(logs[r])[before[r] :]]
        digests = [line.split()[3] for line in new_lines]
        assert new_lines and len(digests) == len(set(digests)), (
            f"a result of the link was computed by both replicas: {new_lines}"
        )
    finally:
        for session in sessions:
            session["context"].close()
        try:
            for container in replicas + docker.service_containers(project, "proxy"):
                docker.save_logs(container)
        finally:
            docker.compose(project, env, "down", "--volumes", "--timeout", "20")
