-- Compose only (deploy/compose.yaml): passwords for the roles of roles.sql on a
-- database that only the Compose network reaches. Anywhere else, set real ones.
ALTER ROLE keystone_owner PASSWORD 'keystone_owner';
ALTER ROLE keystone_app PASSWORD 'keystone_app';
