# syntax=docker/dockerfile:1
# offramp's image: the OpenAI API over the embedded models (their weights ship inside the
# installed wheels), plus whatever upstreams the config routes to. See docs/deployment.md.
#
#   docker build -t offramp .
#   docker run --rm -p 8000:8000 offramp
#
# CUDA variant (llama.cpp and torch built for NVIDIA GPUs; run with --gpus all):
#
#   docker build -t offramp:cuda \
#     --build-arg BUILD_IMAGE=nvidia/cuda:12.8.1-devel-ubuntu24.04 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 \
#     --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_CUDA=on" \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Both stages must use the same base family, since the virtualenv moves between them.

ARG BUILD_IMAGE=python:3.11-slim-bookworm
ARG RUNTIME_IMAGE=python:3.11-slim-bookworm

FROM ${BUILD_IMAGE} AS builder
# The Makefile's flags: any x86-64 with AVX2, never -march=native. A native build on a CPU
# with AMX compiles llama.cpp's AMX kernels, which crash in prompt processing, and the image
# must run on whatever node it lands on, not the one that built it.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
# An unpinned torch from PyPI is a multi-GB CUDA build; the CPU index has the small one.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Versions of Debian's build tools follow the base image; pinning them breaks every rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && if ! command -v python3 >/dev/null; then \
         apt-get install -y --no-install-recommends python3 python3-venv; \
       fi \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/offramp
ENV PATH=/opt/offramp/bin:$PATH
WORKDIR /src

# The slow parts first, keyed only on the pins, so editing the code does not rebuild them.
COPY constraints.txt ./
# Pinned through -c constraints.txt, which hadolint cannot see.
# hadolint ignore=DL3013
RUN pip install --index-url "${TORCH_INDEX_URL}" -c constraints.txt torch
# Its own layer: a change of the llama.cpp flags must not download torch again.
# hadolint ignore=DL3059
RUN CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" pip wheel --no-deps -w /wheels -c constraints.txt llama-cpp-python

COPY pyproject.toml README.md ./
COPY src ./src
# --only-binary: the wheel built above or nothing; never a second, native build.
RUN pip install -c constraints.txt --find-links /wheels --only-binary llama-cpp-python .


FROM ${RUNTIME_IMAGE} AS runtime
# llama.cpp's CPU backend is built with OpenMP.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && if ! command -v python3 >/dev/null; then \
         apt-get install -y --no-install-recommends python3; \
       fi \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 offramp \
    && useradd --uid 10001 --gid offramp --create-home --shell /usr/sbin/nologin offramp \
    && mkdir -p /models \
    && chown offramp:offramp /models

COPY --from=builder /opt/offramp /opt/offramp
ENV PATH=/opt/offramp/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    OFFRAMP_MODELS_DIR=/models \
    OFFRAMP_PORT=8000

WORKDIR /home/offramp
USER 10001
EXPOSE 8000

# /health answers only once the configured models are loaded and the server listens,
# hence the start period. The slim base has no curl; python is there anyway.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('OFFRAMP_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["offramp"]
CMD ["serve", "--host", "0.0.0.0"]
