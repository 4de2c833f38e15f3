-- The change feed reads the rows it has not applied yet. A row's id is handed out at INSERT but the
-- row becomes visible at COMMIT, so a lower id can appear after a higher one was read: reading
-- "id > last id" alone would miss it for good (a revoked key that keeps working). Each row now
-- records its writer's transaction id, and a reader also re-reads the rows of transactions that
-- were still running at its previous read (src/tenancy/changes.ts).
ALTER TABLE public.sys_change ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX sys_change_xid ON public.sys_change (xid);
