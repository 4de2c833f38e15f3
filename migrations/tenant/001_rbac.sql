-- Runs inside each tenant's schema (search_path is set to it): no schema names, no tenant_id.
-- Roles, what each grants, and which principals (API key ids, JWT subjects) hold them.

CREATE TABLE role (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A grant is an exact permission (inventory.items.read) or a pattern (inventory.*, inventory.items.*, *).
CREATE TABLE role_grant (
  role_id    uuid NOT NULL REFERENCES role (id) ON DELETE CASCADE,
  permission text NOT NULL CHECK (permission ~ '^(\*|[a-z][a-z0-9-]*(\.\*|\.[a-z][a-z0-9_-]*(\.\*|\.[a-z][a-z0-9_-]*)))$'),
  PRIMARY KEY (role_id, permission)
);

CREATE TABLE principal_role (
  principal_id text NOT NULL,
  role_id      uuid NOT NULL REFERENCES role (id) ON DELETE CASCADE,
  PRIMARY KEY (principal_id, role_id)
);

INSERT INTO role (name, description) VALUES ('admin', 'Every permission of every module enabled for this tenant');
INSERT INTO role_grant (role_id, permission) SELECT id, '*' FROM role WHERE name = 'admin';
