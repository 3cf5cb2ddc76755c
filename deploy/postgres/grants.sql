-- What each role may do in Keystone's database; run once, connected to that database,
-- before its first migration, as a superuser or the database's owner
-- (docs/deploy.md, "Database roles"). Every table a migration creates is then
-- readable and writable by keystone_app, and owned by keystone_owner.
GRANT USAGE, CREATE ON SCHEMA public TO keystone_owner;
GRANT USAGE ON SCHEMA public TO keystone_app;
ALTER DEFAULT PRIVILEGES FOR ROLE keystone_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO keystone_app;
ALTER DEFAULT PRIVILEGES FOR ROLE keystone_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO keystone_app;
