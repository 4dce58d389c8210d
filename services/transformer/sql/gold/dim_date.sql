-- gold.dim_date: calendar from the first day of data to a year after the last (forecast
-- horizons need future days), with Brazilian national and Bahia holidays.
-- Inputs: bounds (first_date, last_date), holidays (holiday_date, name, scope).
WITH days AS (
    SELECT CAST(d AS DATE) AS calendar_date
    FROM bounds, range(bounds.first_date, bounds.last_date + INTERVAL 366 DAY, INTERVAL 1 DAY) AS t(d)
),
named AS (
    SELECT holiday_date,
           string_agg(name, ' / ' ORDER BY name) AS holiday_name,
           bool_or(scope = 'national')           AS is_national_holiday,
           bool_or(scope = 'BA')                 AS is_bahia_holiday
    FROM holidays
    GROUP BY holiday_date
)
SELECT
    d.calendar_date,
    CAST(year(d.calendar_date) AS INTEGER)                  AS year,
    CAST(quarter(d.calendar_date) AS INTEGER)               AS quarter,
    CAST(month(d.calendar_date) AS INTEGER)                 AS month,
    CAST(weekofyear(d.calendar_date) AS INTEGER)            AS iso_week,
    CAST(isodow(d.calendar_date) AS INTEGER)                AS iso_weekday,
    CAST(date_trunc('week', d.calendar_date) AS DATE)       AS week_start,
    CAST(date_trunc('month', d.calendar_date) AS DATE)      AS month_start,
    isodow(d.calendar_date) >= 6                            AS is_weekend,
    coalesce(n.is_national_holiday, false)                  AS is_national_holiday,
    coalesce(n.is_bahia_holiday, false)                     AS is_bahia_holiday,
    n.holiday_name,
    isodow(d.calendar_date) < 6 AND n.holiday_date IS NULL  AS is_business_day
FROM days AS d
LEFT JOIN named AS n ON n.holiday_date = d.calendar_date
ORDER BY d.calendar_date
