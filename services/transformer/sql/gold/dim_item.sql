-- gold.dim_item: one row per material code seen in the requisitions.
-- Input: silver_erp_requisitions. Description, family and unit come from the most recent
-- request line, since planners fix descriptions in the ERP over time.
WITH latest AS (
    SELECT
        item_code,
        item_description,
        item_family,
        unit,
        row_number() OVER (
            PARTITION BY item_code
            ORDER BY requested_date DESC NULLS LAST, _ingested_at DESC, _source_row DESC
        ) AS recency
    FROM silver_erp_requisitions
),
activity AS (
    SELECT
        item_code,
        min(requested_date)  AS first_seen,
        max(requested_date)  AS last_seen,
        count(*)             AS request_lines,
        sum(quantity)        AS total_quantity
    FROM silver_erp_requisitions
    GROUP BY item_code
)
SELECT
    latest.item_code,
    latest.item_description,
    latest.item_family,
    latest.unit,
    activity.first_seen,
    activity.last_seen,
    CAST(activity.request_lines AS BIGINT) AS request_lines,
    activity.total_quantity
FROM latest
JOIN activity USING (item_code)
WHERE latest.recency = 1
ORDER BY latest.item_code
