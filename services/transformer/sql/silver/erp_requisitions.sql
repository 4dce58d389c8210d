-- silver.erp_requisitions: one bronze file's request lines, typed and trimmed.
-- Input: bronze_batch (the rows of one bronze Parquet object, typed by the ingestor's contract).
-- Codes stay text: leading zeros of material codes ("010825") are part of the code.
SELECT
    nullif(upper(trim(depot_code)), '')                           AS depot_code,
    trim(item_code)                                               AS item_code,
    regexp_replace(trim(item_description), '\s+', ' ', 'g')       AS item_description,
    upper(trim(item_family))                                      AS item_family,
    nullif(regexp_replace(trim(supplier_name), '\s+', ' ', 'g'), '') AS supplier_name,
    CAST(quantity AS DOUBLE)                                      AS quantity,
    nullif(upper(trim(unit)), '')                                 AS unit,
    required_date,
    nullif(trim(request_number), '')                              AS request_number,
    requested_date,
    purchased_date,
    _source_file,
    _source_sheet,
    _source_row,
    _content_sha256,
    _ingested_at
FROM bronze_batch
ORDER BY _source_row
