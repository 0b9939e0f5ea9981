FROM python:3.11-slim
WORKDIR /srv/ainfera
COPY pyproject.toml README.md ./
COPY app ./app
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8080
CMD ["ainfera", "serve", "--host", "0.0.0.0", "--port", "8080"]
