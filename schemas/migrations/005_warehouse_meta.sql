-- 005_warehouse_meta: small facts about the warehouse itself (issue 7).
-- `views_hash` is the SHA-256 of warehouse/views/*.sql last applied: opening the warehouse for
-- writing re-creates the views only when that text changed, instead of on every open (which
-- cost ~0.35 s of every nightly one-file import).

CREATE TABLE warehouse_meta (
    key         VARCHAR PRIMARY KEY,   -- e.g. 'views_hash'
    value       VARCHAR NOT NULL,      -- the fact, as text
    updated_at  TIMESTAMPTZ NOT NULL   -- when it was last written (UTC)
);
