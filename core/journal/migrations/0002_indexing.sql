-- The index phase (a collection is `completed` only when its target is search-ready) and
-- the tuning carried from the source: HNSW settings, payload indexes, the search-time hnsw_ef.
ALTER TABLE run_collections ADD COLUMN index_started_at REAL;      -- wall clock, this attempt
ALTER TABLE run_collections ADD COLUMN index_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE run_collections ADD COLUMN indexed_vectors INTEGER;     -- NULL: the engine does not say
ALTER TABLE run_collections ADD COLUMN index_total INTEGER;
ALTER TABLE run_collections ADD COLUMN search_ready INTEGER NOT NULL DEFAULT 0;
ALTER TABLE run_collections ADD COLUMN hnsw_ef INTEGER;             -- what the app searches with
ALTER TABLE run_collections ADD COLUMN tuning TEXT;                 -- JSON of core.tuning.IndexTuning
