"""The CRM side: the port the sync engine uses, and the bundled PostgreSQL CRM adapter."""
