-- gold.fact_demand: demand per material, site and day (request lines on their request date).
-- Input `silver_erp_requisitions`: the months being rebuilt. Lines without a request date or
-- with a non-positive quantity are not demand.
SELECT
    requested_date                                   AS demand_date,
    item_code,
    coalesce(depot_code, 'UNKNOWN')                  AS site_code,
    sum(quantity)                                    AS quantity,
    CAST(count(*) AS INTEGER)                        AS request_lines,
    CAST(count(DISTINCT request_number) AS INTEGER)  AS requests,
    CAST(date_trunc('month', requested_date) AS DATE) AS business_month
FROM silver_erp_requisitions
WHERE requested_date IS NOT NULL AND quantity > 0
GROUP BY requested_date, item_code, coalesce(depot_code, 'UNKNOWN')
ORDER BY demand_date, item_code, site_code
