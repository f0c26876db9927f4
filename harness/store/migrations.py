"""Append-only, numbered schema migrations (never edit one that shipped; add the next).
The table `schema_migrations` records which ran, as in simonw/llm."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_initial",
        """
        CREATE TABLE variants (
            variant_key     VARCHAR PRIMARY KEY,  -- content hash: recipe, data, parent key, library versions
            name            VARCHAR NOT NULL,
            parent_key      VARCHAR,
            parent_name     VARCHAR,
            method          VARCHAR NOT NULL,     -- base, sft_lora, ...
            recipe_hash     VARCHAR,
            data_hash       VARCHAR,
            artifact_kind   VARCHAR,              -- base, adapter (applied over the parent) or full
            artifact_path   VARCHAR,
            artifact_bytes  BIGINT,
            trainable_params BIGINT,
            total_params    BIGINT,
            train_curve     JSON,                 -- [{step, loss, ...}]
            metrics         JSON,                 -- validation and other build metrics
            wall_s          DOUBLE,
            peak_rss_mb     DOUBLE,
            device          VARCHAR,
            fallback        VARCHAR,              -- any fallback the recipe took, in words
            config          JSON,                 -- the recipe config as validated
            created_at      TIMESTAMP NOT NULL
        );
        CREATE TABLE runs (
            run_id          VARCHAR PRIMARY KEY,
            run_key         VARCHAR NOT NULL,     -- equal keys: the cached result may be reused
            suite           VARCHAR NOT NULL,
            suite_hash      VARCHAR NOT NULL,
            task            VARCHAR NOT NULL,
            task_type       VARCHAR NOT NULL,
            metrics         JSON NOT NULL,        -- metric names in the order the suite lists its scorers
            variant         VARCHAR NOT NULL,
            variant_key     VARCHAR NOT NULL,
            backend         VARCHAR NOT NULL,
            device          VARCHAR,
            dtype           VARCHAR,
            data_hash       VARCHAR NOT NULL,
            prompt_hash     VARCHAR NOT NULL,
            generation_config JSON,
            seed            INTEGER NOT NULL,
            harness_version VARCHAR NOT NULL,
            git_commit      VARCHAR,
            started_at      TIMESTAMP NOT NULL,
            last_used_at    TIMESTAMP NOT NULL,   -- set again when an identical run is reused
            wall_s          DOUBLE NOT NULL,
            n_samples       INTEGER NOT NULL
        );
        CREATE TABLE samples (
            run_id      VARCHAR NOT NULL,
            sample_id   VARCHAR NOT NULL,
            prompt      VARCHAR NOT NULL,
            reference   VARCHAR,              -- gold text (generation) or gold option (multiple choice)
            output      VARCHAR,              -- generated text, or the option the model ranked first
            details     JSON,                 -- per-option log-likelihoods, token counts, latency
            PRIMARY KEY (run_id, sample_id)
        );
        CREATE TABLE scores (
            run_id      VARCHAR NOT NULL,
            sample_id   VARCHAR NOT NULL,
            scorer      VARCHAR NOT NULL,
            metric      VARCHAR NOT NULL,
            value       DOUBLE,
            PRIMARY KEY (run_id, sample_id, scorer, metric)
        );
        -- The run of each (variant, suite, task) that `harness run` last produced or reused:
        -- what reports and gates read.
        CREATE VIEW latest_runs AS
            SELECT * EXCLUDE (rn) FROM (
                SELECT *, row_number() OVER (PARTITION BY variant, suite, task
                                             ORDER BY last_used_at DESC, started_at DESC) AS rn
                FROM runs) WHERE rn = 1;
        """,
    ),
]
