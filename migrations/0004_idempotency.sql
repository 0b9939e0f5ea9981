-- Idempotency keys (Idempotency-Key header on the inference surfaces): the first call's
-- recorded response per tenant and key, replayed to retries for 24 hours. `state` is
-- 'pending' while the first call runs, 'done' once its response is stored.
CREATE TABLE idempotency_keys (
    tenant_id      TEXT NOT NULL,
    idem_key       TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    state          TEXT NOT NULL,
    inference_id   TEXT,
    status_code    INTEGER,
    content_type   TEXT,
    headers        TEXT,
    body           TEXT,
    created_at     TEXT NOT NULL,
    completed_at   TEXT,
    PRIMARY KEY (tenant_id, idem_key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
