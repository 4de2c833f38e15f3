-- The platform's own tables. Tenant data never lives here: each tenant has its own schema.

CREATE TABLE public.sys_tenant (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9-]{1,39}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  domain      text UNIQUE,
  schema_name text NOT NULL UNIQUE CHECK (schema_name ~ '^[a-z][a-z0-9_]{0,62}$'),
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which tenant migrations (the host's own, source 'host', or a module's) each tenant has applied.
-- Kept in public so that "is anything pending?" is one query, not a visit to every schema.
CREATE TABLE public.sys_tenant_migration (
  tenant_id  uuid NOT NULL REFERENCES public.sys_tenant (id) ON DELETE CASCADE,
  source     text NOT NULL,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, source, name)
);

-- Which modules each tenant has, and whether they are usable there.
CREATE TABLE public.sys_tenant_plugin (
  tenant_id  uuid NOT NULL REFERENCES public.sys_tenant (id) ON DELETE CASCADE,
  plugin_id  text NOT NULL,
  enabled    boolean NOT NULL DEFAULT true,
  status     text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'failed')),
  error      text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, plugin_id)
);

-- Changes that cached copies must drop (a tenant suspended, a key revoked...). Every host instance
-- reads it: woken by NOTIFY on PostgreSQL, by polling on the embedded database (which has no
-- cross-connection NOTIFY).
CREATE TABLE public.sys_change (
  id      bigserial PRIMARY KEY,
  topic   text NOT NULL,
  key     text NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION public.sys_change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('plinth_change', NEW.id::text);
  RETURN NEW;
END $$;

CREATE TRIGGER sys_change_notify AFTER INSERT ON public.sys_change
  FOR EACH ROW EXECUTE FUNCTION public.sys_change_notify();
