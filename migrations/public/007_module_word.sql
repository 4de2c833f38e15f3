-- One word for one thing: the table of each tenant's modules says "module", as the contract, the
-- CLI and the docs do. Its rows, keys and constraints are renamed in place; nothing is copied.
ALTER TABLE public.sys_tenant_plugin RENAME TO sys_tenant_module;
ALTER TABLE public.sys_tenant_module RENAME COLUMN plugin_id TO module_id;
ALTER TABLE public.sys_tenant_module RENAME CONSTRAINT sys_tenant_plugin_pkey TO sys_tenant_module_pkey;
ALTER TABLE public.sys_tenant_module RENAME CONSTRAINT sys_tenant_plugin_tenant_id_fkey TO sys_tenant_module_tenant_id_fkey;
ALTER TABLE public.sys_tenant_module RENAME CONSTRAINT sys_tenant_plugin_status_check TO sys_tenant_module_status_check;

-- While a fleet rolls over, an instance older than this migration still reads and writes the old
-- name: a simple view is updatable, ON CONFLICT included. A later migration drops it; nothing in
-- this version uses it.
CREATE VIEW public.sys_tenant_plugin AS
  SELECT tenant_id, module_id AS plugin_id, enabled, status, error, updated_at FROM public.sys_tenant_module;
