-- 002_classifier: athletes and the classifier's segments (issue 4).

CREATE TABLE athletes (
    athlete_id          VARCHAR PRIMARY KEY,   -- 'default' unless configured
    name                VARCHAR,
    body_mass_kg        DOUBLE,                -- from configuration; NULL when not configured
    -- forward-gait baseline learned from this athlete's own forward history (NULL = population prior)
    baseline_json       VARCHAR,
    baseline_n_records  BIGINT,
    updated_at          TIMESTAMPTZ
);

CREATE TABLE device_athletes (
    device_serial       VARCHAR PRIMARY KEY,   -- FIT file_id.serial_number
    athlete_id          VARCHAR NOT NULL
);

-- Contiguous segments covering each foot-sport activity.
CREATE TABLE segments (
    segment_id              BIGINT PRIMARY KEY,  -- hash of (activity_id, start_time)
    activity_id             BIGINT NOT NULL,
    athlete_id              VARCHAR,
    start_time              TIMESTAMPTZ NOT NULL,
    end_time                TIMESTAMPTZ NOT NULL,
    duration_s              DOUBLE NOT NULL,
    distance_m              DOUBLE,
    n_steps                 DOUBLE,              -- steps taken in the segment (cadence integrated over time)
    gait                    VARCHAR NOT NULL CHECK (gait IN ('stationary', 'walk', 'run')),
    direction               VARCHAR CHECK (direction IN ('forward', 'backward')),  -- NULL when stationary
    confidence              DOUBLE NOT NULL,     -- 0-1, calibrated on simulated data
    context                 VARCHAR NOT NULL CHECK (context IN ('track', 'road', 'treadmill', 'unknown')),
    -- the evidence that decided it
    step_length_ratio       DOUBLE,              -- median step length / athlete's forward step length at that cadence
    median_speed_mps        DOUBLE,
    median_cadence_spm      DOUBLE,
    hr_residual_bpm         DOUBLE,              -- median HR minus what the forward baseline predicts at that speed
    median_grade_pct        DOUBLE,
    evidence                VARCHAR,             -- short human-readable note (e.g. 'no cadence: speed only')
    classifier_version      VARCHAR NOT NULL
);
