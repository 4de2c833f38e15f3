-- The host's RBAC tables live in each tenant's schema, owned by the host and out of reach of the
-- tenant's role; they take names no module's table will collide with.
ALTER TABLE role RENAME TO plinth_role;
ALTER TABLE role_grant RENAME TO plinth_role_grant;
ALTER TABLE principal_role RENAME TO plinth_principal_role;
