-- Modules' jobs (src/jobs/, docs/jobs.md). The queue is graphile-worker's (its own schema,
-- graphile_worker, installed by its own migrations as the host migrates). A module enqueues in its
-- caller's transaction, which runs as the tenant's role; that role may insert into
-- public.sys_job_intake and reach nothing else of the queue. Row security holds each row's
-- tenant_role to the role inserting it, so the tenant a job runs for comes from the role the
-- connection is, never from what the module sent. The trigger, the platform's, hands the row to
-- graphile_worker.add_job under that tenant and deletes it: the table is empty at every commit,
-- hence unlogged.
CREATE UNLOGGED TABLE public.sys_job_intake (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_role text NOT NULL DEFAULT current_user,
  module_id text NOT NULL,
  job text NOT NULL,
  payload json NOT NULL,
  run_at timestamptz,
  job_key text,
  priority int,
  max_attempts int
);
REVOKE ALL ON public.sys_job_intake FROM PUBLIC;
GRANT INSERT ON public.sys_job_intake TO PUBLIC;
ALTER TABLE public.sys_job_intake ENABLE ROW LEVEL SECURITY;
CREATE POLICY sys_job_intake_own_role ON public.sys_job_intake FOR INSERT TO PUBLIC WITH CHECK (tenant_role = current_user);

-- One job for one tenant. Each tenant's jobs are one graphile-worker queue, `plinth:<tenant id>`:
-- they run one at a time, so one tenant's backlog neither starves another's jobs nor takes more
-- than one connection of its share. A key is per tenant, module and job. The flags let a worker
-- pass over a suspended tenant's jobs, or a disabled module's, without touching them. The
-- platform's alone (the intake's trigger, a schedule's fan-out).
CREATE FUNCTION public.sys_job_add(tenant uuid, module_id text, job text, payload json, run_at timestamptz, job_key text, priority int, max_attempts int)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM graphile_worker.add_job(
    module_id || '/' || job,
    json_build_object('tenant', tenant, 'payload', payload),
    queue_name := 'plinth:' || tenant,
    run_at := run_at,
    max_attempts := max_attempts,
    job_key := CASE WHEN job_key IS NULL THEN NULL ELSE tenant || '/' || module_id || '/' || job || '/' || job_key END,
    priority := priority,
    flags := ARRAY['tenant:' || tenant, 'module:' || tenant || ':' || module_id]
  );
END $$;
REVOKE ALL ON FUNCTION public.sys_job_add(uuid, text, text, json, timestamptz, text, int, int) FROM PUBLIC;

CREATE FUNCTION public.sys_job_enqueue() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  tenant uuid;
BEGIN
  SELECT id INTO tenant FROM public.sys_tenant WHERE role_name = NEW.tenant_role;
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'plinth: jobs are enqueued by a tenant''s role, not by %', NEW.tenant_role USING ERRCODE = '42501';
  END IF;
  PERFORM public.sys_job_add(tenant, NEW.module_id, NEW.job, NEW.payload, NEW.run_at, NEW.job_key, NEW.priority, NEW.max_attempts);
  DELETE FROM public.sys_job_intake WHERE id = NEW.id;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION public.sys_job_enqueue() FROM PUBLIC;
CREATE TRIGGER sys_job_enqueue AFTER INSERT ON public.sys_job_intake FOR EACH ROW EXECUTE FUNCTION public.sys_job_enqueue();

-- The workers running now, each seen within PLINTH_JOBS_LOCK_TIMEOUT_MS: a worker missing for
-- longer (its process killed) has its jobs unlocked (graphile_worker.force_unlock_workers), and
-- they run again elsewhere.
CREATE TABLE public.sys_job_worker (
  worker_id text PRIMARY KEY,
  host text NOT NULL,
  seen_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON public.sys_job_worker FROM PUBLIC;

-- A dropped tenant's jobs go with it; one running now is dropped by its worker, which finds no tenant.
CREATE FUNCTION public.sys_job_discard(tenant uuid) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM graphile_worker.complete_jobs(ARRAY(SELECT id FROM graphile_worker.jobs WHERE queue_name = 'plinth:' || tenant));
END $$;
REVOKE ALL ON FUNCTION public.sys_job_discard(uuid) FROM PUBLIC;
