-- A server's request rate is a finite number: 'Infinity' (stored before the API refused it)
-- made every listing of the servers invalid JSON. Such rows get the default back.
UPDATE sync.servers SET rate_per_second = 100
WHERE rate_per_second = 'Infinity'::double precision OR rate_per_second = 'NaN'::double precision;
ALTER TABLE sync.servers ADD CONSTRAINT servers_rate_finite
    CHECK (rate_per_second < 'Infinity'::double precision);
