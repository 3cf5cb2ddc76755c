-- The two roles Keystone's database needs; run once per PostgreSQL server, as a
-- superuser or a role with CREATEROLE (docs/deploy.md, "Database roles"). Give each a
-- password afterwards (psql: \password keystone_owner).
--
-- keystone_owner owns the schema: the migration Job connects as it.
-- keystone_app is what the service connects as. It reads and writes rows and nothing
-- else, and since it neither owns the tables nor bypasses row-level security, the
-- tenant policies bind it.
CREATE ROLE keystone_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE keystone_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
