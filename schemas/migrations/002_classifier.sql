-- 002_classifier: athletes and the classifier's segments (issue 4).

CREATE TABLE athletes (
    athlete_id          VARCHAR PRIMARY KEY,   -- 'default' unless configured
    name                VARCHAR,  -- display name from configuration
    body_mass_kg        DOUBLE,                -- from configuration; NULL when not configured
    -- forward-gait baseline learned from this athlete's own forward history (NULL = population prior)
    baseline_json       VARCHAR,  -- forward-gait baseline learned from this athlete's forward history (NULL = population prior)
    baseline_n_records  BIGINT,  -- forward records the baseline was learned from
    updated_at          TIMESTAMPTZ  -- when the baseline was last updated
);

CREATE TABLE device_athletes (
    device_serial       VARCHAR PRIMARY KEY,   -- FIT file_id.serial_number
    athlete_id          VARCHAR NOT NULL  -- athletes.athlete_id
);

-- Contiguous segments covering each foot-sport activity.
CREATE TABLE segments (
    segment_id              BIGINT PRIMARY KEY,  -- hash of (activity_id, start_time)
    activity_id             BIGINT NOT NULL,  -- activities.activity_id
    athlete_id              VARCHAR,  -- athletes.athlete_id
    start_time              TIMESTAMPTZ NOT NULL,  -- segment start (UTC)
    end_time                TIMESTAMPTZ NOT NULL,  -- segment end (UTC)
    duration_s              DOUBLE NOT NULL,  -- end_time - start_time
    distance_m              DOUBLE,  -- distance covered in the segment
    n_steps                 DOUBLE,              -- steps taken in the segment (cadence integrated over time)
    gait                    VARCHAR NOT NULL CHECK (gait IN ('stationary', 'walk', 'run')),  -- stationary, walk or run
    direction               VARCHAR CHECK (direction IN ('forward', 'backward')),  -- NULL when stationary
    confidence              DOUBLE NOT NULL,     -- 0-1, calibrated on simulated data
    context                 VARCHAR NOT NULL CHECK (context IN ('track', 'road', 'treadmill', 'unknown')),  -- where: track (400 m laps / out-and-back), road, treadmill (no GPS, foot pod), unknown
    -- the evidence that decided it
    step_length_ratio       DOUBLE,              -- median step length / athlete's forward step length at that cadence
    median_speed_mps        DOUBLE,  -- evidence: median speed
    median_cadence_spm      DOUBLE,  -- evidence: median cadence
    hr_residual_bpm         DOUBLE,              -- median HR minus what the forward baseline predicts at that speed
    median_grade_pct        DOUBLE,  -- evidence: median grade from altitude (uphill shortens steps too)
    evidence                VARCHAR,             -- short human-readable note (e.g. 'no cadence: speed only')
    classifier_version      VARCHAR NOT NULL  -- version of the classifier that wrote the row
);
