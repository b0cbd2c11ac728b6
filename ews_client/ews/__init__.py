"""Exchange Web Services, sans-I/O: SOAP request builders and answer parsers (one module per
operation family), the ResponseCode table (`codes`), the item converters (`convert`,
`itemxml`, `calendar`, `contacts`, `tasks`) and hardened XML helpers (`xml`). Nothing here
opens a socket or awaits; `ews_client/io/ews.py` sends what these modules build."""
