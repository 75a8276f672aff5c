-- 001_foundation: source files, activities, laps and canonical records.
-- This DDL is the public contract documented in docs/SCHEMA.md. Units are in column names.
-- Ids are deterministic (derived from file content), so an interrupted and re-run import
-- produces exactly the same rows as an uninterrupted one.

CREATE TABLE source_files (
    file_id            BIGINT PRIMARY KEY,   -- hash of (sha256, path): one row per file seen at a path
    sha256             VARCHAR NOT NULL,     -- of the file's bytes (after gunzip for .gz; of the entry for zip members)
    path               VARCHAR NOT NULL,     -- absolute path; zip members as 'archive.zip!/inner/path.fit'
    format             VARCHAR,              -- fit | gpx | tcx | NULL when unknown
    size_bytes         BIGINT NOT NULL,      -- size on the source (compressed size for .gz files and zip members)
    status             VARCHAR NOT NULL CHECK (status IN ('ingested', 'salvaged', 'duplicate', 'skipped', 'quarantined')),  -- ingested: decoded cleanly; salvaged: damaged, the readable part kept; duplicate: a copy of data already kept; skipped: valid but no activity; quarantined: unreadable or refused
    reason             VARCHAR,              -- why skipped / quarantined / salvaged / duplicate; NULL when ingested cleanly
    reason_code        VARCHAR,              -- machine-readable reason (bad_header, crc_mismatch, truncated, malformed_xml, empty, unknown_format, not_activity, exact_duplicate, same_recording, same_activity, ...)
    fit_file_type      VARCHAR,              -- FIT file_id.type (activity, monitoring_b, settings, ...); NULL for GPX/TCX
    decoder            VARCHAR,              -- which decoder produced the rows (e.g. 'fitparse 1.2.0', 'retroingest-fit 1', 'gpx 1')
    duplicate_of_file_id BIGINT,             -- for status 'duplicate': the file whose data is kept
    n_activities       INTEGER NOT NULL DEFAULT 0,  -- activities decoded from the file (sessions; copies included)
    n_records          BIGINT NOT NULL DEFAULT 0,   -- records decoded from the file
    mtime              TIMESTAMPTZ,          -- file modification time when ingested
    ingested_at        TIMESTAMPTZ NOT NULL, -- when this row was written (UTC)
    import_id          BIGINT                -- the import run that wrote it (imports.import_id)
);

CREATE TABLE imports (
    import_id          BIGINT PRIMARY KEY,   -- 1, 2, 3 ... one per ingest run
    started_at         TIMESTAMPTZ NOT NULL, -- when the load phase took the write lock
    finished_at        TIMESTAMPTZ,          -- NULL when the run was interrupted
    n_files            INTEGER,              -- files seen (including unchanged ones)
    n_ingested         INTEGER,              -- files per final status in this run ...
    n_salvaged         INTEGER,              -- ... salvaged
    n_duplicate        INTEGER,              -- ... duplicate
    n_skipped          INTEGER,              -- ... skipped
    n_quarantined      INTEGER,              -- ... quarantined
    n_unchanged        INTEGER,              -- files already in the warehouse, not read again
    n_records          BIGINT,               -- records added
    command            VARCHAR               -- 'cli ingest', 'nightly_import', ...
);

CREATE TABLE activities (
    activity_id            BIGINT PRIMARY KEY,  -- hash of (file sha256, session index)
    file_id                BIGINT NOT NULL,     -- source_files.file_id
    session_index          INTEGER NOT NULL,    -- 0-based session within the file (multisport files hold several)
    format                 VARCHAR NOT NULL,    -- fit | gpx | tcx
    sport                  VARCHAR,             -- FIT sport vocabulary: running, walking, hiking, cycling, swimming, ... ; generic when unknown
    sub_sport              VARCHAR,             -- FIT sub_sport vocabulary: track, treadmill, trail, road, ... ; generic when unknown
    is_foot_sport          BOOLEAN NOT NULL,    -- running, walking, hiking and the like: cadence is in cadence_spm
    start_time             TIMESTAMPTZ NOT NULL,-- first record (UTC)
    end_time               TIMESTAMPTZ NOT NULL,-- last record (UTC)
    utc_offset_s           INTEGER,             -- device local time minus UTC, seconds
    tz_source              VARCHAR,             -- fit_local_timestamp | fit_time_offset | gpx_offset | assumed_utc | NULL
    duration_s             DOUBLE NOT NULL,     -- end_time - start_time (includes pauses), recomputed
    moving_time_s          DOUBLE,              -- recomputed: time between records at >= 0.3 m/s (slow enough for backward walking)
    distance_m             DOUBLE,              -- recomputed: last cumulative distance, else 2-D great-circle track length
    n_records              BIGINT NOT NULL,     -- records in this activity
    avg_speed_mps          DOUBLE,              -- recomputed: distance_m / moving_time_s
    max_speed_mps          DOUBLE,              -- recomputed from records
    avg_heart_rate_bpm     DOUBLE,              -- recomputed from records
    max_heart_rate_bpm     DOUBLE,              -- recomputed from records
    median_cadence_spm     DOUBLE,              -- foot sports, over moving records
    median_cadence_rpm     DOUBLE,              -- cycling and other sports, over moving records
    total_ascent_m         DOUBLE,              -- recomputed from altitude_m with a 2 m hysteresis
    total_descent_m        DOUBLE,              -- recomputed, same method as total_ascent_m
    has_gps                BOOLEAN NOT NULL,    -- at least one record with a position
    has_heart_rate         BOOLEAN NOT NULL,    -- at least one record with heart rate
    has_cadence            BOOLEAN NOT NULL,    -- at least one record with cadence (spm for foot sports, rpm otherwise)
    has_power              BOOLEAN NOT NULL,    -- at least one record with power
    has_running_dynamics   BOOLEAN NOT NULL,    -- vertical oscillation, stance time, vertical ratio or step length present
    cadence_source_unit    VARCHAR,             -- what the file's cadence meant: strides_per_min | steps_per_min | rpm | NULL
    cadence_unit_reason    VARCHAR,             -- how that was decided (FIT profile, or GPX/TCX values against speed)
    body_mass_kg           DOUBLE,              -- from the file (FIT user_profile.weight); NULL when the file has none
    device_manufacturer    VARCHAR,             -- FIT file_id.manufacturer (garmin, suunto, wahoo, ...)
    device_product         VARCHAR,             -- FIT product name (fenix6, fr935, ...) or number when unnamed
    device_serial          VARCHAR,             -- FIT file_id.serial_number
    time_created           TIMESTAMPTZ,         -- FIT file_id.time_created
    creator                VARCHAR,             -- GPX creator / TCX Creator name
    -- the device's own summary (FIT session, TCX laps summed); NULL when the file has none
    device_elapsed_time_s  DOUBLE,  -- device summary
    device_timer_time_s    DOUBLE,  -- device summary
    device_distance_m      DOUBLE,  -- device summary
    device_avg_speed_mps   DOUBLE,  -- device summary
    device_max_speed_mps   DOUBLE,  -- device summary
    device_avg_heart_rate_bpm DOUBLE,  -- device summary
    device_max_heart_rate_bpm DOUBLE,  -- device summary
    device_avg_cadence_spm DOUBLE,              -- foot sports, steps per minute
    device_avg_cadence_rpm DOUBLE,              -- other sports
    device_total_ascent_m  DOUBLE,  -- device summary
    device_total_descent_m DOUBLE,  -- device summary
    device_calories_kcal   DOUBLE,  -- device summary
    device_num_laps        INTEGER,  -- device summary
    duplicate_of           BIGINT,              -- NULL for the kept (primary) copy; else the activity_id kept for the same real activity
    richness               DOUBLE NOT NULL      -- score used to choose the primary copy (channels present, format, records)
);

CREATE TABLE laps (
    activity_id            BIGINT NOT NULL,  -- activities.activity_id
    lap_index              INTEGER NOT NULL,    -- 0-based within the activity
    start_time             TIMESTAMPTZ NOT NULL,  -- lap start (UTC)
    end_time               TIMESTAMPTZ,  -- lap end (UTC; NULL when the file has none)
    elapsed_time_s         DOUBLE,  -- device: total elapsed time
    timer_time_s           DOUBLE,  -- device: timer time (pauses excluded)
    distance_m             DOUBLE,  -- device: lap distance
    avg_speed_mps          DOUBLE,  -- device
    max_speed_mps          DOUBLE,  -- device
    avg_heart_rate_bpm     DOUBLE,  -- device
    max_heart_rate_bpm     DOUBLE,  -- device
    avg_cadence_spm        DOUBLE,              -- foot sports
    avg_cadence_rpm        DOUBLE,              -- other sports
    total_ascent_m         DOUBLE,  -- device
    total_descent_m        DOUBLE,  -- device
    calories_kcal          DOUBLE,  -- device
    trigger                VARCHAR,             -- manual, distance, time, position_lap, session_end, ...
    intensity              VARCHAR,             -- active, rest, warmup, cooldown, ...
    PRIMARY KEY (activity_id, lap_index)
);

-- Canonical per-record table: the same columns for every format. Missing or invalid values are
-- NULL (never 0 or a sentinel). Mirrored by retroingest.canonical.RECORD_SCHEMA.
CREATE TABLE records (
    activity_id              BIGINT NOT NULL,  -- activities.activity_id
    seq                      INTEGER NOT NULL,  -- 0-based order within the activity
    ts                       TIMESTAMPTZ NOT NULL,  -- UTC time of the record
    elapsed_s                DOUBLE NOT NULL,   -- seconds since the activity's first record
    lat_deg                  DOUBLE,  -- WGS84 latitude, degrees
    lon_deg                  DOUBLE,  -- WGS84 longitude, degrees
    altitude_m               DOUBLE,  -- enhanced_altitude preferred; NULL below -450 m
    distance_m               DOUBLE,            -- cumulative, as recorded (FIT/TCX) or computed from positions (GPX)
    speed_mps                DOUBLE,            -- as recorded, else derived from distance over time
    cadence_spm              DOUBLE,            -- foot sports: steps per minute, both feet
    cadence_rpm              DOUBLE,            -- cycling: crank revolutions per minute (other sports: cycles per minute)
    heart_rate_bpm           DOUBLE,  -- NULL outside 25-250 bpm (strap artefacts)
    power_w                  DOUBLE,  -- as recorded
    temperature_c            DOUBLE,  -- device temperature sensor
    vertical_oscillation_mm  DOUBLE,  -- running dynamics
    stance_time_ms           DOUBLE,  -- ground contact time
    stance_time_balance_pct  DOUBLE,            -- left foot share of ground contact time
    vertical_ratio_pct       DOUBLE,  -- vertical oscillation / step length, percent
    step_length_m            DOUBLE,  -- as measured by the device (FIT step_length, mm -> m)
    lap_index                INTEGER            -- laps.lap_index the record falls in; NULL when the file has no laps
);
