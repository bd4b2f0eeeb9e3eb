-- The metadata generation: one row, incremented by every write transaction (which holds the
-- cluster's write lock), read by each node before it trusts a cached answer. A row rather
-- than a sequence: a sequence moves before its transaction commits, a row when it does.
CREATE TABLE semdock_generation (
    id integer PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO semdock_generation (id, value) VALUES (1, 0);
