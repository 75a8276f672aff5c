-- 003_equivalence: what backward running and walking was worth, under popular claims and under
-- measured evidence (issue 5). Documented in docs/METRICS.md; sources in
-- ../shared/reference/biomech.md sections 4 and 5.
--
-- Profiles are data. One row per profile and parameter set: changing a profile in the
-- configuration file (retroingest.toml, [profiles.<name>]) inserts a new row, marks it active
-- and the older row inactive, and the metrics are recomputed. Every `equivalence` row names the
-- params_hash that produced it. A *_low/*_high pair left NULL means "no band": results then
-- carry a zero-width band (low = high = central).

CREATE TABLE equivalence_profiles (
    profile                      VARCHAR NOT NULL,   -- 'seed_claims', 'evidence', or a user's name
    params_hash                  VARCHAR NOT NULL,   -- 'builtin-1' for shipped rows; sha256 prefix of the parameters for configured ones
    source                       VARCHAR NOT NULL CHECK (source IN ('builtin', 'config')),  -- builtin: shipped in this migration; config: from retroingest.toml [profiles.<name>]
    active                       BOOLEAN NOT NULL,   -- exactly one active row per profile
    description                  VARCHAR,  -- what the profile stands for, in words
    -- forward-equivalent distance = backward distance x ratio
    run_distance_ratio           DOUBLE NOT NULL,  -- forward-equivalent distance per backward metre, running
    run_distance_ratio_low       DOUBLE,  -- low end of its band; NULL = no band
    run_distance_ratio_high      DOUBLE,  -- high end of its band; NULL = no band
    walk_distance_ratio          DOUBLE NOT NULL,  -- forward-equivalent distance per backward metre, walking
    walk_distance_ratio_low      DOUBLE,  -- low end of its band; NULL = no band
    walk_distance_ratio_high     DOUBLE,  -- high end of its band; NULL = no band
    -- forward-equivalent steps = backward steps x ratio
    run_step_ratio               DOUBLE NOT NULL,  -- forward-equivalent steps per backward step, running
    run_step_ratio_low           DOUBLE,  -- low end of its band; NULL = no band
    run_step_ratio_high          DOUBLE,  -- high end of its band; NULL = no band
    walk_step_ratio              DOUBLE NOT NULL,  -- forward-equivalent steps per backward step, walking
    walk_step_ratio_low          DOUBLE,  -- low end of its band; NULL = no band
    walk_step_ratio_high         DOUBLE,  -- high end of its band; NULL = no band
    -- forward-equivalent time = backward time x ratio; NULL = the profile makes no time claim
    run_time_ratio               DOUBLE,  -- easy forward running time per backward running second; NULL = no time claim
    run_time_ratio_low           DOUBLE,  -- low end of its band; NULL = no band
    run_time_ratio_high          DOUBLE,  -- high end of its band; NULL = no band
    walk_time_ratio              DOUBLE,  -- forward time per backward walking second; NULL = no time claim
    walk_time_ratio_low          DOUBLE,  -- low end of its band; NULL = no band
    walk_time_ratio_high         DOUBLE,  -- high end of its band; NULL = no band
    -- energy
    energy_model                 VARCHAR NOT NULL CHECK (energy_model IN ('flat_rate', 'acsm')),  -- flat_rate: kcal per minute; acsm: ACSM equations and Compendium (docs/METRICS.md)
    flat_kcal_per_min            DOUBLE,             -- flat_rate: kcal per minute whatever the speed or mass
    run_energy_ratio             DOUBLE,             -- acsm: r on the net term of VO2 = 0.2*S*r + 3.5
    run_energy_ratio_low         DOUBLE,  -- low end of r for the energy band
    run_energy_ratio_high        DOUBLE,  -- high end of r for the energy band
    walk_energy_ratio            DOUBLE,             -- acsm: r on the net term of VO2 = 0.1*S*r + 3.5
    walk_energy_ratio_low        DOUBLE,  -- low end of r for the energy band
    walk_energy_ratio_high       DOUBLE,  -- high end of r for the energy band
    walk_compendium_met          DOUBLE,             -- acsm: Compendium MET used instead inside the speed window
    walk_compendium_min_speed_mps DOUBLE,  -- lower end of the Compendium speed window, m/s
    walk_compendium_max_speed_mps DOUBLE,  -- upper end of the Compendium speed window, m/s
    sources                      VARCHAR,            -- where the numbers come from, in words
    created_at                   TIMESTAMPTZ NOT NULL,  -- when this parameter set was first stored (UTC)
    PRIMARY KEY (profile, params_hash),
    CHECK (energy_model <> 'flat_rate' OR flat_kcal_per_min IS NOT NULL),
    CHECK (energy_model <> 'acsm' OR (run_energy_ratio IS NOT NULL AND walk_energy_ratio IS NOT NULL))
);

-- seed_claims: what popular articles say (biomech.md section 5). None cites a study.
--   x6 distance: "one lap backward = six laps forward" (fitness blogs, e.g. thefittchick.com,
--   curiousmindmagazine.com); x10 steps: "100 steps backward = 1000 steps forward" (folklore,
--   viral 2025); 400 kcal per 30 min: popular claim, source not located.
INSERT INTO equivalence_profiles (
    profile, params_hash, source, active, description,
    run_distance_ratio, walk_distance_ratio, run_step_ratio, walk_step_ratio,
    energy_model, flat_kcal_per_min, sources, created_at)
VALUES (
    'seed_claims', 'builtin-1', 'builtin', true,
    'Popular claims: one backward lap = six forward laps; 100 backward steps = 1000 forward steps; 30 min burns 400 kcal',
    6.0, 6.0, 10.0, 10.0,
    'flat_rate', 400.0 / 30.0,
    'Fitness blogs and folklore (no primary study): thefittchick.com, curiousmindmagazine.com, superoptimist.com; 400 kcal/30 min source not located. See biomech.md section 5.',
    TIMESTAMPTZ '2026-11-23 00:00:00+00');

-- evidence: measured studies (biomech.md sections 4.3 and 5).
--   Running distance/energy ratio 1.35 (1.15-1.40): Williford et al. 1998; Wright & Weyand 2001;
--   Rasica et al. 2020; applied to the net term of the ACSM running equation
--   (ACSM's Guidelines for Exercise Testing and Prescription: VO2 = 0.2*S + 3.5, S in m/min).
--   Walking ratio 1.4 (1.25-1.5): Williford 1998 (net 1.40); Compendium net 1.32-1.52.
--   Walking energy: Compendium of Physical Activities code 17320 "walking, backward, 3.5 mph,
--   level" = 6.0 MET (Ainsworth 2011; Herrmann 2024) for 1.3-1.6 m/s, else ACSM walking
--   VO2 = 0.1*S*1.4 + 3.5. kcal/min = VO2 * kg / 200 (1 L O2 ~ 5 kcal).
--   Steps: walking 0.95 (0.8-1.1) = energy ratio 1.25-1.5 x step-length ratio 0.6-0.75 (Laufer
--   2005); running 1.175 (1.15-1.2) = r_run x step-length ratio ~0.85-0.9 [estimate].
--   Time: 1 min backward running at self-selected speed ~ 1 min easy forward running (+-15 %),
--   since BR runs at ~0.75 x forward speed at ~1.35 x cost per distance. No time claim for walking.
INSERT INTO equivalence_profiles (
    profile, params_hash, source, active, description,
    run_distance_ratio, run_distance_ratio_low, run_distance_ratio_high,
    walk_distance_ratio, walk_distance_ratio_low, walk_distance_ratio_high,
    run_step_ratio, run_step_ratio_low, run_step_ratio_high,
    walk_step_ratio, walk_step_ratio_low, walk_step_ratio_high,
    run_time_ratio, run_time_ratio_low, run_time_ratio_high,
    energy_model,
    run_energy_ratio, run_energy_ratio_low, run_energy_ratio_high,
    walk_energy_ratio, walk_energy_ratio_low, walk_energy_ratio_high,
    walk_compendium_met, walk_compendium_min_speed_mps, walk_compendium_max_speed_mps,
    sources, created_at)
VALUES (
    'evidence', 'builtin-1', 'builtin', true,
    'Measured studies: backward running costs 1.15-1.40x per distance, walking 1.25-1.5x; ACSM and Compendium energy',
    1.35, 1.15, 1.40,
    1.4, 1.25, 1.5,
    1.175, 1.15, 1.2,
    0.95, 0.8, 1.1,
    1.0, 0.85, 1.15,
    'acsm',
    1.35, 1.15, 1.40,
    1.4, 1.25, 1.5,
    6.0, 1.3, 1.6,
    'Williford 1998; Wright & Weyand 2001; Rasica 2020; Laufer 2005; ACSM Guidelines metabolic equations; Compendium of Physical Activities code 17320 (Ainsworth 2011, Herrmann 2024). See biomech.md sections 4 and 5.',
    TIMESTAMPTZ '2026-11-23 00:00:00+00');

-- One row per backward segment and one per activity (its backward segments summed), per active
-- profile. compute_equivalence() replaces an activity's rows in one transaction.
CREATE TABLE equivalence (
    profile                      VARCHAR NOT NULL,   -- equivalence_profiles.profile
    params_hash                  VARCHAR NOT NULL,   -- the parameter set that produced the row
    level                        VARCHAR NOT NULL CHECK (level IN ('segment', 'activity')),  -- segment: one backward segment; activity: its backward segments summed
    activity_id                  BIGINT NOT NULL,  -- activities.activity_id
    segment_id                   BIGINT,             -- NULL for level 'activity'
    athlete_id                   VARCHAR,  -- segments.athlete_id ('default' when the segment names none)
    start_time                   TIMESTAMPTZ NOT NULL, -- segment start; for 'activity' the first backward segment's start
    gait                         VARCHAR NOT NULL CHECK (gait IN ('walk', 'run', 'mixed')),  -- walk | run; mixed for an activity with both
    context                      VARCHAR,            -- segment context; 'mixed' when an activity's segments differ
    n_segments                   INTEGER NOT NULL,   -- 1 for 'segment'
    backward_time_s              DOUBLE NOT NULL,  -- backward time, s
    backward_distance_m          DOUBLE,             -- NULL when the segment has no distance (e.g. no GPS, no footpod)
    backward_steps               DOUBLE,             -- NULL without cadence
    fwd_distance_m               DOUBLE,             -- forward-equivalent distance
    fwd_distance_low_m           DOUBLE,  -- low end of the band (= central when the profile has none)
    fwd_distance_high_m          DOUBLE,  -- high end of the band
    fwd_steps                    DOUBLE,             -- forward-equivalent steps
    fwd_steps_low                DOUBLE,  -- low end of the band
    fwd_steps_high               DOUBLE,  -- high end of the band
    fwd_time_s                   DOUBLE,             -- forward-equivalent easy-running time; NULL when the profile makes no time claim
    fwd_time_low_s               DOUBLE,  -- low end of the band
    fwd_time_high_s              DOUBLE,  -- high end of the band
    energy_kcal                  DOUBLE,             -- gross energy of the backward work
    energy_kcal_low              DOUBLE,  -- with the low energy ratio
    energy_kcal_high             DOUBLE,  -- with the high energy ratio
    energy_method                VARCHAR,            -- flat_rate | acsm_running | acsm_walking | compendium_17320 | mixed
    body_mass_kg                 DOUBLE NOT NULL,  -- body mass used for energy, kg
    body_mass_source             VARCHAR NOT NULL CHECK (body_mass_source IN ('file', 'athlete_config', 'assumed_70kg')),  -- file (FIT user_profile) | athlete_config | assumed_70kg
    backward_pace_s_per_km       DOUBLE,             -- backward time / backward distance
    fwd_equivalent_pace_s_per_km DOUBLE,             -- backward time / forward-equivalent distance
    avg_heart_rate_bpm           DOUBLE,             -- over records with HR in the backward time
    hr_coverage                  DOUBLE,             -- share of backward time with HR, 0-1; NULL without HR
    trimp                        DOUBLE,             -- Banister TRIMP of the backward time; NULL when hr_coverage < 0.5
    trimp_hr_source              VARCHAR,            -- athlete_config | assumed (HR rest/max used by TRIMP)
    computed_at                  TIMESTAMPTZ NOT NULL  -- when the row was computed (UTC)
);
