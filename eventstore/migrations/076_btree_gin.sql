-- B-tree operator classes for GIN, so one GIN index can hold a read model's plain columns beside its full text
-- (projections/support_tickets.py). A contrib extension shipped with PostgreSQL, trusted: a database owner may
-- create it.
CREATE EXTENSION IF NOT EXISTS btree_gin;
