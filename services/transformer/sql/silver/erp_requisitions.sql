-- silver.erp_requisitions: request lines, typed and trimmed; codes stay text (leading zeros are
-- part of a material code). Input `bronze`: rows of one or more bronze objects.
-- The ERP repeats (request, item, depot) when a request is split into several lines, so the
-- business key is extended with the line's ordinal among its twins in the same file: the same
-- export ingested again yields the same keys and replaces, never doubles, its lines.
SELECT
    nullif(upper(trim(depot_code)), '')                              AS depot_code,
    trim(item_code)                                                  AS item_code,
    regexp_replace(trim(item_description), '\s+', ' ', 'g')          AS item_description,
    upper(trim(item_family))                                         AS item_family,
    nullif(upper(regexp_replace(trim(supplier_name), '\s+', ' ', 'g')), '') AS supplier_name,
    CAST(quantity AS DOUBLE)                                         AS quantity,
    nullif(upper(trim(unit)), '')                                    AS unit,
    required_date,
    nullif(trim(request_number), '')                                 AS request_number,
    requested_date,
    purchased_date,
    CAST(row_number() OVER (
        PARTITION BY _content_sha256, trim(request_number), trim(item_code), upper(trim(depot_code))
        ORDER BY _source_row
    ) AS INTEGER)                                                    AS line_number,
    CAST(date_trunc('month', requested_date) AS DATE)                AS business_month,
    -- A line without a request number cannot be recognised in another export: its key is
    -- its place in its own file, so re-ingesting that file replaces it and nothing else does.
    CASE WHEN nullif(trim(request_number), '') IS NULL
         THEN concat_ws('|', 'unkeyed', _content_sha256, CAST(_source_row AS VARCHAR))
         ELSE concat_ws('|', trim(request_number), trim(item_code),
                        coalesce(upper(trim(depot_code)), ''),
                        CAST(row_number() OVER (
                            PARTITION BY _content_sha256, trim(request_number), trim(item_code),
                                         upper(trim(depot_code))
                            ORDER BY _source_row) AS VARCHAR))
    END                                                              AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
