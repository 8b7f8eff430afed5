"""Docker and Compose from the tests: build the images, start containers, look inside them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "container"
IMAGE = os.environ.get("KV_LENS_IMAGE", "kv-lens:latest")
PROXY_IMAGE = os.environ.get("KV_LENS_PROXY_IMAGE", "kv-lens-proxy:latest")
STREAMLIT_PORT = 8501


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@cache
def compose_command() -> tuple[str, ...]:
    """`docker compose` (v2) where installed, else Debian's `docker-compose` (1.29)."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


def compose(project: str, env: dict[str, str], *args: str, timeout: float = 300) -> str:
    command = [*compose_command(), "-f", str(ROOT / "compose.yaml"), "-p", project, *args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def build_images(what: str) -> None:
    """`app`, `proxy` or `all` through deploy/build.sh, the documented way, into a log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"build-{what}.log"
    with log.open("w") as out:
        done = subprocess.run(
            ["bash", str(ROOT / "deploy" / "build.sh"), what],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise RuntimeError(f"deploy/build.sh failed (full log: {log}):\n{tail}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.read().strip() == b"ok"
    except OSError:
        return False


def wait_for(check, what: str, timeout: float, interval: float = 0.25) -> float:
    """Poll `check()` until it is true; return the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)
    return time.monotonic() - start


def health_status(container: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", container).strip()


def published(container: str, port: int = STREAMLIT_PORT) -> str:
    """The host address of a container's published port, as a base URL."""
    address = docker("port", container, str(port)).split()[0]
    return f"http://{address}"


def service_containers(project: str, service: str) -> list[str]:
    out = docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        f"label=com.docker.compose.service={service}",
        "--format",
        "{{.Names}}",
    )
    return sorted(out.split())


def mounts(container: str) -> list[dict]:
    return json.loads(docker("inspect", "-f", "{{json .Mounts}}", container))


def peers(container: str, port: int = STREAMLIT_PORT) -> set[tuple[str, int]]:
    """Remote (address, port) of the established TCP connections to `port` in the container,
    leaving out loopback (Docker's own health check)."""
    found = set()
    for line in docker("exec", container, "cat", "/proc/net/tcp").splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state != "01" or int(local.split(":")[1], 16) != port:
            continue
        address, remote_port = remote.split(":")
        octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
        if octets[0] != "127":
            found.add((".".join(octets), int(remote_port, 16)))
    return found


def lasting_peers(container: str, samples: int = 4, interval: float = 0.5) -> set:
    """Connections present in every sample over ~2 s: WebSockets, not the proxy's health checks
    or a file download (the proxy closes plain HTTP exchanges with a replica at once)."""
    lasting = peers(container)
    for _ in range(samples - 1):
        time.sleep(interval)
        lasting &= peers(container)
    return lasting


def save_logs(container: str) -> str:
    """The container's output (stdout and stderr), also written to artifacts/container/."""
    done = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, timeout=60, check=False
    )
    text = done.stdout + done.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{container}.log").write_text(text)
    return text
