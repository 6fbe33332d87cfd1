-- Runs, their collections (progress is latest-value: one row, rewritten a few times a second),
-- events, control requests, validations and cutovers.
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    run_key       TEXT NOT NULL,          -- sha256 of (source, target, collections, mapping)
    source_uri    TEXT NOT NULL,
    target_uri    TEXT NOT NULL,
    collections   TEXT NOT NULL,          -- JSON list; [] means "all"
    mapping       TEXT NOT NULL,          -- JSON of payload field names and mode
    options       TEXT NOT NULL,          -- JSON of batch size, workers, rate
    status        TEXT NOT NULL,          -- pending|running|paused|completed|failed|cancelled
    error         TEXT,
    pid           INTEGER,
    host          TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    finished_at   REAL
);
CREATE INDEX runs_by_key ON runs(run_key, created_at);

CREATE TABLE run_collections (
    run_id            TEXT NOT NULL REFERENCES runs(run_id),
    name              TEXT NOT NULL,
    target_name       TEXT NOT NULL,
    status            TEXT NOT NULL,
    total             INTEGER NOT NULL DEFAULT 0,
    records_read      INTEGER NOT NULL DEFAULT 0,
    records_written   INTEGER NOT NULL DEFAULT 0,  -- durable: at or below the watermark
    bytes_written     INTEGER NOT NULL DEFAULT 0,
    watermark         TEXT,                        -- JSON cursor, resume point
    records_per_second REAL NOT NULL DEFAULT 0,
    average_records_per_second REAL NOT NULL DEFAULT 0,
    bytes_per_second  REAL NOT NULL DEFAULT 0,
    eta_seconds       REAL,
    retries           INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    seconds           REAL NOT NULL DEFAULT 0,
    dimension         INTEGER,
    metric            TEXT,
    skipped_reason    TEXT,
    error             TEXT,
    target_created    INTEGER NOT NULL DEFAULT 0,
    updated_at        REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    ts          REAL NOT NULL,
    kind        TEXT NOT NULL,
    collection  TEXT,
    message     TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX events_by_run ON events(run_id, id);

CREATE TABLE controls (
    run_id      TEXT PRIMARY KEY,
    command     TEXT NOT NULL,   -- pause|resume|cancel
    issued_at   REAL NOT NULL
);

CREATE TABLE validations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    source_uri  TEXT NOT NULL,
    target_uri  TEXT NOT NULL,
    collection  TEXT NOT NULL,
    target_collection TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    result      TEXT NOT NULL
);
CREATE INDEX validations_by_target ON validations(target_uri, target_collection, ts);

CREATE TABLE cutovers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    action      TEXT NOT NULL,   -- cutover|rollback|router
    target_uri  TEXT NOT NULL,
    alias       TEXT NOT NULL,
    from_collection TEXT,
    to_collection   TEXT,
    user        TEXT,
    host        TEXT,
    forced      INTEGER NOT NULL DEFAULT 0,
    reason      TEXT,
    validation  TEXT,
    detail      TEXT
);
CREATE INDEX cutovers_by_alias ON cutovers(target_uri, alias, ts);
