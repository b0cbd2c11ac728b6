"""Microsoft Graph (`/v1.0/...`) over the simulator's mailboxes, plus the OAuth token endpoint
and outgoing change notifications. The mailboxes are the EWS endpoint's: an item written
through one protocol is visible through the other."""
