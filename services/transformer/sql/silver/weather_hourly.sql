-- silver.weather_hourly: Open-Meteo hours per grid cell, located at the nearest known city.
-- Input `cities` (city, state, latitude, longitude) is the platform's list of depot cities.
SELECT
    w.observed_at,
    coalesce(c.city, printf('%.2f,%.2f', w.latitude, w.longitude))  AS city,
    c.state                                                          AS state,
    w.latitude,
    w.longitude,
    w.temperature_c,
    w.relative_humidity_pct,
    w.precipitation_mm,
    w.wind_speed_kmh,
    CAST(date_trunc('month', w.observed_at) AS DATE)                 AS business_month,
    printf('%.4f|%.4f|%s', w.latitude, w.longitude, strftime(w.observed_at, '%Y-%m-%dT%H:%M'))
                                                                     AS _business_key,
    w._source_file, w._source_sheet, w._source_row, w._content_sha256, w._ingested_at
FROM bronze AS w
LEFT JOIN cities AS c
    ON abs(c.latitude - w.latitude) <= 0.25 AND abs(c.longitude - w.longitude) <= 0.25
-- Two cities close together must not duplicate an hour: the nearest one takes it.
QUALIFY row_number() OVER (
    PARTITION BY w._content_sha256, w._source_row
    ORDER BY power(c.latitude - w.latitude, 2) + power(c.longitude - w.longitude, 2) NULLS LAST,
             c.city
) = 1
