-- 004_classifier_refs: each classified activity's forward-gait reference (issue 4).
-- The athlete baseline (athletes.baseline_json) is a count-weighted aggregate of these rows, so it
-- improves as forward history accumulates and re-classifying an activity replaces, never adds, its
-- contribution.

CREATE TABLE classifier_activity_refs (
    activity_id          BIGINT PRIMARY KEY,   -- activities.activity_id
    athlete_id           VARCHAR NOT NULL,     -- athletes.athlete_id the activity counted for
    run_forward_s        DOUBLE NOT NULL,      -- seconds of confident forward running on the flat
    run_speed_mps        DOUBLE,               -- median forward-run (grade-adjusted) speed
    run_cadence_spm      DOUBLE,               -- median forward-run cadence
    run_offset           DOUBLE,               -- median log-cadence residual vs the population run locus
    walk_forward_s       DOUBLE NOT NULL,      -- seconds of confident forward walking
    walk_offset          DOUBLE,               -- same for forward walking
    hr_gain_bpm_per_mps  DOUBLE,               -- fitted forward HR gain
    gct_ms               DOUBLE,               -- forward stance time at 3.0 m/s
    classifier_version   VARCHAR NOT NULL,     -- classifier that wrote the row
    updated_at           TIMESTAMPTZ NOT NULL  -- when it was written (UTC)
);
