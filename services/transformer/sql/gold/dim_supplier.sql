-- gold.dim_supplier: lead-time statistics per supplier, from lines with both dates and a
-- purchase on or after the request.
SELECT
    supplier_name,
    CAST(count(DISTINCT request_number) AS BIGINT)                   AS order_count,
    CAST(count(*) AS BIGINT)                                         AS line_count,
    avg(lead_time_days)                                              AS lead_time_mean_days,
    stddev_samp(lead_time_days)                                      AS lead_time_std_days,
    quantile_cont(lead_time_days, 0.5)                               AS lead_time_p50_days,
    quantile_cont(lead_time_days, 0.9)                               AS lead_time_p90_days,
    CAST(min(lead_time_days) AS INTEGER)                             AS lead_time_min_days,
    CAST(max(lead_time_days) AS INTEGER)                             AS lead_time_max_days,
    max(requested_date)                                              AS last_order_date
FROM gold_fact_lead_time
WHERE supplier_name IS NOT NULL AND lead_time_days >= 0
GROUP BY supplier_name
ORDER BY supplier_name
