-- silver.erp_sites: tower sites and their clients (hidden sheet DADOS).
SELECT
    upper(trim(site_code))                      AS site_code,
    nullif(trim(site_id), '')                   AS site_id,
    nullif(upper(trim(client_name)), '')        AS client_name,
    nullif(upper(trim(client_id)), '')          AS client_id,
    nullif(upper(trim(change_status)), '')      AS change_status,
    CAST(NULL AS DATE)                          AS business_month,
    upper(trim(site_code))                      AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
