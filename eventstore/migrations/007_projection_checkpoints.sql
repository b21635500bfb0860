-- Catch-up projections (read models that follow the global log instead of running inside the append)
-- keep how far they have applied the log here, updated in the same transaction as what they applied.
CREATE TABLE projection_checkpoints (
    name     text PRIMARY KEY,
    position bigint NOT NULL
);
