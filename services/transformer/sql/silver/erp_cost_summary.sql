-- silver.erp_cost_summary: cost per financial account from the workbook's pivot table; the
-- pivot's grand-total row ('Total Resultado', 'Total Geral') is a sum, not an account.
SELECT
    regexp_replace(trim(account), '\s+', ' ', 'g')   AS account,
    CAST(net_value_brl AS DOUBLE)                    AS net_value_brl,
    CAST(NULL AS DATE)                               AS business_month,
    upper(regexp_replace(trim(account), '\s+', ' ', 'g')) AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
WHERE NOT regexp_matches(upper(trim(account)), '^TOTAL( GERAL| RESULTADO)?$')
