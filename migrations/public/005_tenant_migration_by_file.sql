-- Deciding that nothing is pending counts, for each migration file, the tenants whose ledger has it
-- with its checksum (tenancy/migrations.ts). This index answers each count from the index alone,
-- without reading every ledger row: with 10,000 tenants, milliseconds instead of a scan per file.
CREATE INDEX sys_tenant_migration_by_file ON public.sys_tenant_migration (source, name, checksum, tenant_id);
