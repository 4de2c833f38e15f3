-- What 001_tickets.sql and 002_comments_and_priority.sql make, for a tenant new to tickets: the
-- same tables, columns (in the same order), constraints (by the same names) and indexes, made in
-- one go. 002's ALTER TABLE ... ADD COLUMN ... DEFAULT reads every index in the database on
-- PostgreSQL 15, and Citus refuses its unnamed CHECK; neither is needed on an empty table.
-- migrations.test.ts checks that this and the history make the same schema.
CREATE TABLE tickets (
  id         bigserial PRIMARY KEY,
  title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  status     text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  closed_at  timestamptz,
  priority   text NOT NULL DEFAULT 'normal' CONSTRAINT tickets_priority_check CHECK (priority IN ('low', 'normal', 'high'))
);
CREATE INDEX tickets_open_idx ON tickets (created_at) WHERE status = 'open';

CREATE TABLE ticket_comments (
  id         bigserial PRIMARY KEY,
  ticket_id  bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
  author     text NOT NULL,
  body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_comments_ticket_idx ON ticket_comments (ticket_id);
