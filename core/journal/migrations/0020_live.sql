-- Live sources (core/live/): each migrated collection's cut watermark — the source's seq id
-- up to which the target holds every change — and the lag a catch-up or follower measured.
CREATE TABLE live_cuts (
    run_id          TEXT NOT NULL,
    collection      TEXT NOT NULL,               -- source collection
    target_name     TEXT NOT NULL,
    cut_seq_id      INTEGER NOT NULL,            -- every change after it is still to apply
    cut_at          REAL NOT NULL,               -- wall clock of that cut
    ids_file        TEXT,                        -- ids the target may hold (finds deletes)
    source_seq_id   INTEGER,                     -- newest seq id seen in the source
    pending         INTEGER NOT NULL DEFAULT 0,  -- changes seen but not applied yet
    pending_since   REAL,                        -- wall clock of the oldest of them
    applied         INTEGER NOT NULL DEFAULT 0,  -- changes applied by catch-ups so far
    catch_ups       INTEGER NOT NULL DEFAULT 0,
    follower_pid    INTEGER,                     -- set while `ferry migrate --follow` runs
    following_since REAL,
    note            TEXT,                        -- the last cut's words (tries, how)
    updated_at      REAL NOT NULL,
    PRIMARY KEY (run_id, collection)
);
