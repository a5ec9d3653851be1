FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow[auth]>=3.17,<3.18" psycopg2-binary boto3
EXPOSE 5000
