-- gold.dim_site: every depot or site code seen in the requisitions, the sites sheet or the stock
-- snapshots, and 'UNKNOWN' for requisition lines without a depot (the facts map those to it), so
-- that every fact's site_code resolves here.
-- Inputs: silver_erp_requisitions, silver_erp_sites, silver_stock_on_hand, states (uf, name).
-- State from the code where the ERP's conventions tell it: a '-UF' suffix (ALMOX-BA), a
-- 'GER' + UF warehouse (GERBA), or a UF + three letters + digits tower code (BAJSS002-3).
WITH codes AS (
    SELECT coalesce(depot_code, 'UNKNOWN') AS site_code, min(requested_date) AS first_seen,
           max(requested_date) AS last_seen, count(*) AS request_lines
    FROM silver_erp_requisitions
    GROUP BY coalesce(depot_code, 'UNKNOWN')
),
stock_codes AS (
    SELECT DISTINCT depot_code AS site_code FROM silver_stock_on_hand WHERE depot_code IS NOT NULL
),
sites AS (
    SELECT site_code, client_name, client_id, site_id,
           row_number() OVER (PARTITION BY site_code
                              ORDER BY _ingested_at DESC, _content_sha256 DESC, _source_row DESC) AS r
    FROM silver_erp_sites
),
all_codes AS (
    SELECT site_code FROM codes UNION SELECT site_code FROM sites
    UNION SELECT site_code FROM stock_codes
),
guessed AS (
    SELECT site_code,
           coalesce(
               nullif(regexp_extract(site_code, '-([A-Z]{2})$', 1), ''),
               nullif(regexp_extract(site_code, '^GER([A-Z]{2})$', 1), ''),
               nullif(regexp_extract(site_code, '^([A-Z]{2})[A-Z]{3}[0-9]', 1), '')
           ) AS uf
    FROM all_codes
)
SELECT
    g.site_code,
    s.site_id,
    s.client_name,
    s.client_id,
    st.uf                                            AS state,
    st.name                                          AS state_name,
    c.first_seen,
    c.last_seen,
    CAST(coalesce(c.request_lines, 0) AS BIGINT)     AS request_lines,
    s.site_code IS NOT NULL                          AS in_sites_sheet
FROM guessed AS g
LEFT JOIN states AS st ON st.uf = g.uf
LEFT JOIN codes AS c ON c.site_code = g.site_code
LEFT JOIN sites AS s ON s.site_code = g.site_code AND s.r = 1
ORDER BY g.site_code
