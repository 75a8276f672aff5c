-- Privacy zones (issue 8): private places (home, work) whose positions dashboards must not show,
-- as Strava's privacy zones do. Zones come from [privacy] zones in retroingest.toml and are
-- copied here by retroingest.privacy.sync_zones (on ingest and report); this file only declares
-- the table, so re-applying the views never loses them.
CREATE TABLE IF NOT EXISTS privacy_zones (
    name      VARCHAR PRIMARY KEY,  -- e.g. 'home'
    lat_deg   DOUBLE NOT NULL,      -- centre, WGS84 degrees
    lon_deg   DOUBLE NOT NULL,
    radius_m  DOUBLE NOT NULL       -- positions within this great-circle distance are hidden
);

-- v_records with lat_deg/lon_deg NULL inside any privacy zone (haversine, mean Earth radius
-- 6,371,008.8 m). Use this view, not v_records, for anything that leaves the machine.
CREATE OR REPLACE VIEW v_records_public AS
SELECT r.* EXCLUDE (in_zone) REPLACE (
    CASE WHEN in_zone THEN NULL ELSE lat_deg END AS lat_deg,
    CASE WHEN in_zone THEN NULL ELSE lon_deg END AS lon_deg)
FROM (
    SELECT v.*, coalesce(EXISTS (
        SELECT 1 FROM privacy_zones z
        WHERE 2 * 6371008.8 * asin(sqrt(
                  pow(sin(radians(v.lat_deg - z.lat_deg) / 2), 2)
                  + cos(radians(v.lat_deg)) * cos(radians(z.lat_deg)) * pow(sin(radians(v.lon_deg - z.lon_deg) / 2), 2)
              )) <= z.radius_m), false) AS in_zone
    FROM v_records v
) r;
