"""Microsoft Graph, sans-I/O: request builders (`requests`), answer parsers and the error
table (`responses`), the JSON wire helpers (`wire`), the entity converters (`convert`,
`events`, `contacts`, `tasks`, `recurrence`, `series`) and the pure side of calendar sync
(`calendar_delta`). Nothing here opens a socket or awaits.

The I/O lives in `ews_client/io/`: `graph_transport.py` sends, `graph.py` holds
`GraphClient` (the `ExchangeBackend` for Exchange Online), `graph_calendar.py` runs the
calendar delta. Other packages import the public names from `ews_client` itself."""
