-- The plan of a dry run as data, item by item. Owned by db/run_plans.py.

-- name: run_plan_record
-- Store run $1's plan ($2: the document of planning.render.plan_document).
UPDATE sync.runs SET plan_items = $2::jsonb WHERE id = $1
