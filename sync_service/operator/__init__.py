"""The operator surface: the CLI's commands, the HTTP API under /api/v1/ with its OpenAPI
document, and `Operations`, the one implementation both call. Operator input (server specs,
mailbox CSV files) is validated here, before anything reaches the database.
"""
