-- Added in 1.2.0: a ticket left open is reminded of once (the remind-stale job).
ALTER TABLE tickets ADD COLUMN reminded_at timestamptz;
