-- The tenant boundary held by PostgreSQL (docs/security.md): what a tenant's role may reach beyond
-- its schema, and the platform's own names and locks that module code must not be able to touch.

-- Role names are the server's, not the database's: each tenant role is tagged with the database
-- it serves, so `plinth doctor` can tell the roles of a database that is gone. Called as each
-- tenant is created; run here for the tenants made by an earlier plinth.
CREATE FUNCTION public.sys_tag_tenant_role(role_name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('COMMENT ON ROLE %I IS %L', role_name, 'plinth tenant role; database ' || current_database());
END $$;
REVOKE ALL ON FUNCTION public.sys_tag_tenant_role(text) FROM PUBLIC;
SELECT public.sys_tag_tenant_role(role_name) FROM public.sys_tenant;

-- What a tenant transaction may leave on its session, undone as it ends (after COMMIT or
-- ROLLBACK, in the same round trip): one statement, one result for the driver to read. Cursors
-- held past commit, LISTEN, session settings, temporary objects, session advisory locks. It calls
-- nothing by an unqualified name, so no search_path a module set can change what it runs.
CREATE FUNCTION public.sys_reset_session() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'CLOSE ALL';
  EXECUTE 'UNLISTEN *';
  EXECUTE 'RESET ALL';
  EXECUTE 'DISCARD TEMP';
  PERFORM pg_catalog.pg_advisory_unlock_all();
END $$;

-- The change feed's channel: a name only the platform can read, so no module code can wake every
-- instance's feed with NOTIFY.
INSERT INTO public.sys_setting (name, value)
VALUES ('change_channel', 'plinth_change_' || substr(md5(gen_random_uuid()::text || clock_timestamp()::text), 1, 16));

CREATE OR REPLACE FUNCTION public.sys_change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_catalog.pg_notify((SELECT value FROM public.sys_setting WHERE name = 'change_channel'), NEW.id::text);
  RETURN NEW;
END $$;

-- The secret tenant logins are derived from when PLINTH_TENANT_SECRET is not set: 244 random bits,
-- readable by the platform's role alone (tenant roles have no privilege on public's tables).
INSERT INTO public.sys_setting (name, value)
VALUES ('tenant_login_secret', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

-- Tenant roles create no temporary objects (a temporary table would outlive its transaction on a
-- pooled connection, and shadow the tenant's own tables), nor anything in public. The platform's
-- role keeps both. Needs the database's owner or a superuser; without either, `plinth doctor`
-- says what is left to do.
DO $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO CURRENT_USER', current_database());
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'plinth: could not revoke TEMPORARY and CREATE on public from PUBLIC (not the database owner)';
END $$;

-- Where the platform's role is a superuser (it owns pg_catalog's objects' privileges):
-- - session-level advisory locks are not for tenant roles: one held on a pooled connection would
--   outlive the request (the transaction-level ones, which end with the transaction, stay);
-- - the catalog views that list other tenants' schemas, roles, tables and their row counts are
--   not readable by tenant roles (docs/security.md lists what stays visible, and why).
DO $$
DECLARE
  fn text;
  view text;
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE NOTICE 'plinth: not a superuser; advisory-lock functions and catalog views keep their default privileges';
    RETURN;
  END IF;
  FOREACH fn IN ARRAY ARRAY[
    'pg_advisory_lock(bigint)', 'pg_advisory_lock(integer, integer)',
    'pg_advisory_lock_shared(bigint)', 'pg_advisory_lock_shared(integer, integer)',
    'pg_try_advisory_lock(bigint)', 'pg_try_advisory_lock(integer, integer)',
    'pg_try_advisory_lock_shared(bigint)', 'pg_try_advisory_lock_shared(integer, integer)'
  ] LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION pg_catalog.%s FROM PUBLIC', fn);
  END LOOP;
  FOREACH view IN ARRAY ARRAY[
    'pg_namespace', 'pg_class', 'pg_roles', 'pg_user', 'pg_tables', 'pg_views', 'pg_matviews',
    'pg_indexes', 'pg_sequences', 'pg_stat_all_tables', 'pg_stat_user_tables', 'pg_stat_xact_all_tables',
    'pg_stat_xact_user_tables', 'pg_statio_all_tables', 'pg_statio_user_tables', 'pg_stat_all_indexes',
    'pg_stat_user_indexes', 'pg_statio_all_indexes', 'pg_statio_user_indexes', 'pg_statio_all_sequences',
    'pg_statio_user_sequences'
  ] LOOP
    IF to_regclass('pg_catalog.' || view) IS NOT NULL THEN
      EXECUTE format('REVOKE SELECT ON pg_catalog.%I FROM PUBLIC', view);
    END IF;
  END LOOP;
END $$;
