-- gold.dim_item: one row per material code, with its demand class.
-- Inputs: silver_erp_requisitions (all of it), gold_fact_demand (all of it).
-- Description, family and unit come from the most recent line: planners fix them over time.
-- Demand class (Syntetos-Boylan) on weekly buckets from the item's first demand to the last
-- week of data: ADI = weeks / weeks with demand, CV2 = (std / mean)^2 of non-zero weeks;
-- cut-offs in shared/demand_classes.py (the demand_class macro).
WITH latest AS (
    SELECT item_code, item_description, item_family, unit,
           row_number() OVER (
               PARTITION BY item_code
               ORDER BY requested_date DESC NULLS LAST, _ingested_at DESC, _content_sha256 DESC,
                        _source_row DESC
           ) AS recency
    FROM silver_erp_requisitions
),
activity AS (
    SELECT item_code,
           min(requested_date) AS first_seen,
           max(requested_date) AS last_seen,
           count(*)            AS request_lines,
           sum(quantity)       AS total_quantity
    FROM silver_erp_requisitions
    GROUP BY item_code
),
weekly AS (
    SELECT item_code, date_trunc('week', demand_date) AS week, sum(quantity) AS quantity
    FROM gold_fact_demand
    GROUP BY ALL
),
span AS (SELECT max(week) AS last_week FROM weekly),
shape AS (
    SELECT w.item_code,
           count(*)                                             AS demand_weeks,
           date_diff('week', min(w.week), any_value(s.last_week)) + 1 AS weeks,
           avg(w.quantity)                                      AS mean_size,
           stddev_pop(w.quantity)                               AS std_size
    FROM weekly AS w, span AS s
    GROUP BY w.item_code
),
classified AS (
    SELECT item_code,
           weeks / demand_weeks                                   AS adi,
           coalesce(power(std_size / nullif(mean_size, 0), 2), 0) AS cv2
    FROM shape
)
SELECT
    l.item_code,
    l.item_description,
    l.item_family,
    l.unit,
    a.first_seen,
    a.last_seen,
    CAST(a.request_lines AS BIGINT)                   AS request_lines,
    a.total_quantity,
    c.adi,
    c.cv2,
    -- The one definition of the classes (cut-offs, rounding): shared/demand_classes.py.
    demand_class(c.adi, c.cv2)                        AS demand_class
FROM latest AS l
JOIN activity AS a USING (item_code)
LEFT JOIN classified AS c USING (item_code)
WHERE l.recency = 1
ORDER BY l.item_code
