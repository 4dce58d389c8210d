-- gold.mart_features: one row per material and week, zero-filled from the item's first week
-- to the last week of data: what the offline forecaster and analysts start from.
-- Families of features: temporal (calendar, holidays), climate (weather), economic (SELIC,
-- PTAX, IPCA), lead time (the item's purchases), hierarchical (family and site activity) and
-- rolling statistics over PAST weeks only (never the week itself: no leakage).
WITH weekly AS (
    SELECT item_code, date_trunc('week', demand_date)::DATE AS week_start,
           sum(quantity) AS quantity, sum(request_lines) AS request_lines,
           count(DISTINCT site_code) AS sites
    FROM gold_fact_demand GROUP BY ALL
),
last_week AS (SELECT max(week_start) AS last_week_start FROM weekly),
items AS (
    SELECT i.item_code, i.item_family, i.demand_class,
           date_trunc('week', i.first_seen)::DATE AS first_week
    FROM gold_dim_item AS i WHERE i.first_seen IS NOT NULL
),
weeks AS (
    -- A week is labelled by its Monday, so a week spanning New Year belongs to one year.
    SELECT gold_dim_date.week_start,
           CAST(year(gold_dim_date.week_start) AS INTEGER) AS year,
           CAST(weekofyear(gold_dim_date.week_start) AS INTEGER) AS iso_week,
           CAST(month(gold_dim_date.week_start) AS INTEGER) AS month,
           CAST(quarter(gold_dim_date.week_start) AS INTEGER) AS quarter,
           CAST(sum(CASE WHEN is_national_holiday OR is_bahia_holiday THEN 1 ELSE 0 END) AS INTEGER)
               AS holidays,
           CAST(sum(CASE WHEN is_business_day THEN 1 ELSE 0 END) AS INTEGER) AS business_days
    FROM gold_dim_date, last_week
    WHERE gold_dim_date.week_start <= last_week.last_week_start
    GROUP BY gold_dim_date.week_start
),
external AS (
    SELECT date_trunc('week', calendar_date)::DATE AS week_start,
           avg(temperature_mean_c) AS temperature_mean_c, sum(precipitation_mm) AS precipitation_mm,
           avg(humidity_mean_pct) AS humidity_mean_pct, avg(selic_rate_pct) AS selic_rate_pct,
           avg(ptax_usd_sell) AS ptax_usd_sell, avg(ipca_month_pct) AS ipca_month_pct
    FROM gold_fact_external_daily GROUP BY ALL
),
lead AS (
    SELECT item_code, avg(lead_time_days) AS lead_time_mean_days,
           quantile_cont(lead_time_days, 0.9) AS lead_time_p90_days
    FROM gold_fact_lead_time WHERE lead_time_days >= 0 GROUP BY item_code
),
grid AS (
    SELECT it.item_code, it.item_family, it.demand_class, w.*
    FROM items AS it JOIN weeks AS w ON w.week_start >= it.first_week
),
filled AS (
    SELECT g.*, coalesce(d.quantity, 0) AS quantity,
           CAST(coalesce(d.request_lines, 0) AS INTEGER) AS request_lines,
           CAST(coalesce(d.sites, 0) AS INTEGER) AS sites
    FROM grid AS g LEFT JOIN weekly AS d USING (item_code, week_start)
),
family_weeks AS (
    SELECT item_family, week_start, sum(quantity) AS family_quantity
    FROM filled GROUP BY ALL
),
family AS (
    -- The family's own past, the same for every item of the family whenever the item started.
    SELECT item_family, week_start, family_quantity,
           avg(family_quantity) OVER (PARTITION BY item_family ORDER BY week_start
                                      ROWS BETWEEN 13 PRECEDING AND 1 PRECEDING)
               AS family_quantity_mean_13w
    FROM family_weeks
)
SELECT
    f.item_code, f.week_start, f.item_family, f.demand_class,
    f.quantity, f.request_lines, f.sites,
    f.year, f.iso_week, f.month, f.quarter, f.holidays, f.business_days,
    e.temperature_mean_c, e.precipitation_mm, e.humidity_mean_pct,
    e.selic_rate_pct, e.ptax_usd_sell, e.ipca_month_pct,
    l.lead_time_mean_days, l.lead_time_p90_days,
    avg(f.quantity) OVER item_past4    AS quantity_mean_4w,
    avg(f.quantity) OVER item_past13   AS quantity_mean_13w,
    stddev_pop(f.quantity) OVER item_past13 AS quantity_std_13w,
    CAST(count(*) FILTER (WHERE f.quantity > 0) OVER item_past13 AS INTEGER) AS demand_weeks_13w,
    fam.family_quantity,
    fam.family_quantity_mean_13w
FROM filled AS f
LEFT JOIN external AS e USING (week_start)
LEFT JOIN lead AS l USING (item_code)
LEFT JOIN family AS fam USING (item_family, week_start)
WINDOW item_past4 AS (PARTITION BY f.item_code ORDER BY f.week_start
                      ROWS BETWEEN 4 PRECEDING AND 1 PRECEDING),
       item_past13 AS (PARTITION BY f.item_code ORDER BY f.week_start
                       ROWS BETWEEN 13 PRECEDING AND 1 PRECEDING)
ORDER BY f.item_code, f.week_start
