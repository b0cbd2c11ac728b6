-- name: engine_heartbeat
-- Register or refresh a live replica.
INSERT INTO sync.engines (name, roles) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET heartbeat_at = now(), roles = EXCLUDED.roles

-- name: engine_remove
DELETE FROM sync.engines WHERE name = $1

-- name: engines_live
-- Replicas whose heartbeat is recent: they share each server's rate budget.
SELECT name, roles, started_at, heartbeat_at FROM sync.engines
WHERE heartbeat_at > now() - $1::interval
ORDER BY name
