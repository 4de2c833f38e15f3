-- Each tenant gets a NOLOGIN database role. Its requests, its withTenantTx work and its modules'
-- migrations run under it (SET LOCAL ROLE): it may use and create in its own schema and owns the
-- module tables there, and it has no privilege on public's platform tables, on other tenants'
-- schemas, or on the host's RBAC tables in its own schema (docs/security.md).
--
-- Role names are global to a PostgreSQL server, and several databases may hold plinth tenants with
-- the same codes: every role name starts with this database's own prefix.
CREATE TABLE public.sys_setting (
  name  text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO public.sys_setting (name, value)
VALUES ('tenant_role_prefix', 'plinth_' || substr(md5(random()::text || clock_timestamp()::text || current_database()), 1, 8));

ALTER TABLE public.sys_tenant ADD COLUMN role_name text UNIQUE CHECK (role_name ~ '^[a-z][a-z0-9_]{0,62}$');

-- Tenants made by an earlier plinth: a role each, and their module tables handed to it. The host's
-- RBAC tables (under their names before and after tenant migration 002) stay the host's.
DO $$
DECLARE
  prefix text := (SELECT value FROM public.sys_setting WHERE name = 'tenant_role_prefix');
  tenant record;
  relation record;
  tenant_role text;
BEGIN
  FOR tenant IN SELECT id, schema_name FROM public.sys_tenant LOOP
    tenant_role := prefix || '_' || tenant.schema_name;
    EXECUTE format('CREATE ROLE %I NOLOGIN', tenant_role);
    EXECUTE format('GRANT %I TO CURRENT_USER', tenant_role);
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', tenant.schema_name, tenant_role);
    FOR relation IN
      SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = tenant.schema_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
         AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
         AND c.relname NOT IN ('role', 'role_grant', 'principal_role', 'plinth_role', 'plinth_role_grant', 'plinth_principal_role')
    LOOP
      EXECUTE format('ALTER %s %I.%I OWNER TO %I',
        CASE relation.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
        tenant.schema_name, relation.relname, tenant_role);
    END LOOP;
    UPDATE public.sys_tenant SET role_name = tenant_role WHERE id = tenant.id;
  END LOOP;
END $$;

ALTER TABLE public.sys_tenant ALTER COLUMN role_name SET NOT NULL;
