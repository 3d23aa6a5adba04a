# PostgreSQL 15 for the result store's PostgreSQL tests (preinstalled on our
# machines; this keeps a fresh one working). Tests run initdb themselves.
apt_install postgresql-15
