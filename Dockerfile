# The gateway image: runtime dependencies only, run as an unprivileged user whose data
# directory (/var/lib/ainfera: the embedded SQLite ledger and the signing key, unless the
# environment points elsewhere) is its own and is a volume.
FROM python:3.11-slim
WORKDIR /srv/ainfera
COPY pyproject.toml README.md ./
COPY app ./app
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY migrations ./migrations
COPY upstream_sim ./upstream_sim
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/ainfera \
       --shell /usr/sbin/nologin ainfera \
    && install -d -o ainfera -g ainfera -m 0700 /var/lib/ainfera
ENV AINFERA_DATABASE_URL=sqlite:////var/lib/ainfera/ainfera.db \
    AINFERA_SIGNING_KEY_FILE=/var/lib/ainfera/signing.key
VOLUME ["/var/lib/ainfera"]
USER ainfera
WORKDIR /var/lib/ainfera
EXPOSE 8080
CMD ["ainfera", "serve", "--host", "0.0.0.0", "--port", "8080"]
