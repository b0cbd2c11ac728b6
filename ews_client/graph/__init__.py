"""Microsoft Graph backend: sans-I/O builders and parsers (`requests`, `responses`, the
entity converters), a JSON transport, and `GraphClient` (the `ExchangeBackend` for Exchange
Online). `from ews_client.io.graph import GraphClient, GRAPH_ROOT, GRAPH_SCOPE`."""
