-- API keys. A key is shown once as plk_<id>_<secret>; only a hash of the secret is kept, found by
-- its public id. The principal a key acts as is `key:<id>`; its roles live in its tenant's schema.
CREATE TABLE public.sys_api_key (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12}$'),
  tenant_id   uuid NOT NULL REFERENCES public.sys_tenant (id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  secret_hash text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz,
  UNIQUE (tenant_id, name)
);
