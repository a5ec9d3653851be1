# A Prefect worker with peftops installed (CPU torch; swap the torch line for a CUDA build on GPUs).
FROM python:3.11-slim
WORKDIR /app
# jemalloc instead of glibc's malloc for every process in the container (the worker and the
# flow runs it starts): glibc keeps freed activation buffers in its heap, which made LoRA
# training peak at 1.6x what its tensors hold; jemalloc brought LoRA's peak RSS on MiniLM
# from ~1,630 to ~1,036 MB, at a speed cost within measurement noise (at most ~10 %;
# docs/benchmarks.md, memory profile). Remove this ENV to trade the memory back for it. The
# loader finds the bare name in its cache, whatever the architecture's library folder.
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*
ENV LD_PRELOAD=libjemalloc.so.2
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY components components
COPY tasks tasks
COPY flows flows
COPY peftops peftops
# optional extras, e.g. `--build-arg EXTRAS=ray` for Ray nodes and the worker that drives them
ARG EXTRAS=""
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" boto3 psycopg2-binary
ENV DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
