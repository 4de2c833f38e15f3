-- The audit trail (src/platform/audit/): one row per change to the platform, written in the
-- transaction of the change, each row chained to the one before it by SHA-256.
CREATE TABLE public.audit_event (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  actor_kind text NOT NULL,
  actor_id text,
  action text NOT NULL,
  target text,
  tenant text,
  module text,
  outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
  request_id text,
  client_address text,
  changes jsonb NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_event_at ON public.audit_event (at);
CREATE INDEX audit_event_tenant ON public.audit_event (tenant, seq) WHERE tenant IS NOT NULL;
CREATE INDEX audit_event_action ON public.audit_event (action, seq);

-- The chain's head, one row. Appending a row updates it in the same statement: the row lock is
-- the one lock appends are taken under, in order, until their transaction ends. `anchor_*` is
-- where the kept chain starts: the last row a prune removed (0 and zeros before any prune).
CREATE TABLE public.audit_head (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  seq bigint NOT NULL,
  hash text NOT NULL,
  prev_hash text NOT NULL,
  anchor_seq bigint NOT NULL,
  anchor_hash text NOT NULL
);
INSERT INTO public.audit_head (seq, hash, prev_hash, anchor_seq, anchor_hash)
  VALUES (0, repeat('0', 64), repeat('0', 64), 0, repeat('0', 64));

-- Tenant roles read and write nothing of it (they have nothing on public's tables but what is granted).
REVOKE ALL ON public.audit_event, public.audit_head FROM PUBLIC;

-- Rows are appended, never changed: no UPDATE, no TRUNCATE, and a DELETE only of rows a prune has
-- sealed first (at or before the anchor it moved). The trigger holds for the table's owner too;
-- whoever disables it is still caught by `plinth audit verify`, which recomputes the chain.
CREATE FUNCTION public.sys_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT anchor_seq FROM public.audit_head) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_event rows cannot be changed or removed (%); only plinth audit prune removes them, after sealing', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON public.audit_event
  FOR EACH ROW EXECUTE FUNCTION public.sys_audit_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON public.audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION public.sys_audit_append_only();
