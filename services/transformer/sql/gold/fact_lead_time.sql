-- gold.fact_lead_time: one row per request line: requested, purchased and the days between.
-- A purchase dated before its request is kept (the quality gate warns about it) rather than
-- silently dropped.
SELECT
    item_code,
    coalesce(depot_code, 'UNKNOWN')                   AS site_code,
    supplier_name,
    request_number,
    line_number,
    requested_date,
    purchased_date,
    CAST(date_diff('day', requested_date, purchased_date) AS INTEGER) AS lead_time_days,
    quantity,
    business_month,
    _source_file,
    _source_row,
    _content_sha256
FROM silver_erp_requisitions
WHERE requested_date IS NOT NULL
ORDER BY requested_date, item_code, site_code, request_number, line_number
