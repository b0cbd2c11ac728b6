-- OAuth servers: the token scope (a national cloud's Graph, e.g. https://graph.microsoft.us/.default;
-- NULL: the backend's default) and, instead of a secret, the path of a PEM file holding the
-- client certificate and its private key (the key itself is never stored here).
ALTER TABLE sync.servers
    ADD COLUMN scope text CHECK (scope ~ '^https://[^/?#]+(/[^?#]*)?/\.default$'),
    ADD COLUMN certificate_file text CHECK (certificate_file <> '');
