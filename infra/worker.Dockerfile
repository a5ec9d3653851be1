# A Prefect worker with peftops installed (CPU torch; swap the torch line for a CUDA build on GPUs).
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY components components
COPY tasks tasks
COPY flows flows
COPY peftops peftops
RUN pip install --no-cache-dir . boto3 psycopg2-binary
ENV DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
