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
    (
        "002_judge",
        """
        -- Which judge graded a judge run (identity only: endpoint and model, never an API key).
        ALTER TABLE runs ADD COLUMN judge JSON;
        -- Every judge call of a judge run: both orders, every vote, errors and parse failures included.
        CREATE TABLE judgments (
            run_id        VARCHAR NOT NULL,
            sample_id     VARCHAR NOT NULL,   -- the judged item, or anchor:<id> for a human-labelled anchor
            call_index    INTEGER NOT NULL,
            role          VARCHAR NOT NULL,   -- item or anchor
            position      VARCHAR,            -- pairwise: candidate_first or candidate_second
            sample_index  INTEGER NOT NULL,   -- k-th judge sample (majority vote)
            prompt_name   VARCHAR NOT NULL,
            verdict       VARCHAR,            -- pairwise, as the judge saw it: A, B or tie
            winner        VARCHAR,            -- pairwise, mapped back: candidate, baseline or tie
            rating        DOUBLE,             -- single grading
            ratings       JSON,               -- single grading per dimension
            human         VARCHAR,            -- anchors: the human label
            parsed        BOOLEAN NOT NULL,
            error         VARCHAR,            -- the call failed after its retries
            reply         VARCHAR,
            len_candidate INTEGER,
            len_other     INTEGER,            -- pairwise: the baseline answer's length (characters)
            cached        BOOLEAN NOT NULL,
            latency_s     DOUBLE,
            attempts      INTEGER,
            PRIMARY KEY (run_id, call_index)
        );
        -- Run-level statistics that are not means of per-item scores, computed when the run is
        -- written: judge health (consistency, position and length bias, parse failures, agreement
        -- with human anchors) and serving figures (latency percentiles, throughput, cost, memory).
        CREATE TABLE run_stats (
            run_id   VARCHAR NOT NULL,
            metric   VARCHAR NOT NULL,
            value    DOUBLE,
            low      DOUBLE,
            high     DOUBLE,
            n        INTEGER,
            warning  VARCHAR,                 -- set when the value crosses its threshold
            PRIMARY KEY (run_id, metric)
        );
        -- Judge replies by call key (judge identity + full prompt + sample index): a rerun makes no calls.
        CREATE TABLE judge_cache (
            cache_key   VARCHAR PRIMARY KEY,
            judge_hash  VARCHAR NOT NULL,
            reply       VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL
        );
        -- Human labels of audited claims (`harness audit import`), beside the verifier's verdict.
        CREATE TABLE audit_labels (
            run_id            VARCHAR NOT NULL,
            sample_id         VARCHAR NOT NULL,
            claim_index       INTEGER NOT NULL,
            claim             VARCHAR NOT NULL,
            verifier_supported BOOLEAN NOT NULL,
            human_supported   BOOLEAN NOT NULL,
            imported_at       TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, sample_id, claim_index)
        );
        CREATE OR REPLACE VIEW latest_runs AS
            SELECT * EXCLUDE (rn) FROM (
                SELECT *, row_number() OVER (PARTITION BY variant, suite, task
                                             ORDER BY last_used_at DESC, started_at DESC) AS rn
                FROM runs) WHERE rn = 1;
        """,
    ),
    (
        "003_partial_runs_and_provenance",
        """
        -- A run of a --limit sample is partial: reports and gates read a full run when one exists.
        ALTER TABLE runs ADD COLUMN partial BOOLEAN DEFAULT false;
        ALTER TABLE runs ADD COLUMN n_items_total INTEGER;  -- items the task has (before --limit)
        ALTER TABLE runs ADD COLUMN task_config JSON;       -- the task as validated (prices, levels, settings)
        ALTER TABLE runs ADD COLUMN suite_tasks JSON;       -- the suite's tasks at run time: [{task, type, baseline}]
        ALTER TABLE runs ADD COLUMN libraries JSON;         -- torch, transformers, peft, bitsandbytes versions
        CREATE OR REPLACE VIEW latest_runs AS
            SELECT * EXCLUDE (rn) FROM (
                SELECT *, row_number() OVER (PARTITION BY variant, suite, task
                                             ORDER BY coalesce(partial, false), last_used_at DESC, started_at DESC) AS rn
                FROM runs) WHERE rn = 1;
        """,
    ),
    (
        "004_checkpoints",
        """
        -- Work units of a task run not yet written as a run (generated outputs, option
        -- log-likelihoods, timed request groups), committed as they finish so a killed run resumes
        -- where it stopped. Keyed by the run key; removed in the transaction that writes the run,
        -- so reports never see a task until all of it is stored.
        CREATE TABLE checkpoints (
            run_key     VARCHAR NOT NULL,
            unit        VARCHAR NOT NULL,     -- item id (generation: `<id>#t<k>` per turn), or request group
            payload     JSON NOT NULL,
            created_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (run_key, unit)
        );
        """,
    ),
    (
        "005_fidelity",
        """
        -- Fidelity to the parent, per item, written by `harness run` for every variant whose parent
        -- has a run of the same task (the figures reports and gates compute from the two runs'
        -- samples, kept here so they are one SQL query away). Keyed by both runs: a newer parent
        -- run gets rows of its own.
        CREATE TABLE fidelity (
            run_id         VARCHAR NOT NULL,   -- the variant's run
            parent_run_id  VARCHAR NOT NULL,   -- its parent's run of the same task
            sample_id      VARCHAR NOT NULL,
            metric         VARCHAR NOT NULL,   -- parent_agreement, parent_flips_to_wrong, parent_kl, parent_rougeL, ...
            value          DOUBLE,
            PRIMARY KEY (run_id, parent_run_id, sample_id, metric)
        );
        """,
    ),
    (
        "006_review_labels",
        """
        -- A person's verdicts on rubric checks (`harness review import`), beside the automatic
        -- verdict of the same check on the same output, for per-check agreement in the report.
        CREATE TABLE review_labels (
            run_id       VARCHAR NOT NULL,
            sample_id    VARCHAR NOT NULL,
            check_name   VARCHAR NOT NULL,
            automatic    BOOLEAN,            -- the rubric scorer's verdict (null: the check has none)
            human        BOOLEAN NOT NULL,
            imported_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, sample_id, check_name)
        );
        """,
    ),
    (
        "007_review_ratings",
        """
        -- A person's 1-10 ratings of the rubric's judged dimensions (tone, warmth) from the same
        -- review sheets, compared in the report with an LLM judge's ratings of the same outputs.
        CREATE TABLE review_ratings (
            run_id       VARCHAR NOT NULL,
            sample_id    VARCHAR NOT NULL,
            dimension    VARCHAR NOT NULL,
            rating       DOUBLE NOT NULL,
            imported_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, sample_id, dimension)
        );
        """,
    ),
    (
        "008_structured_item_and_figure_keys",
        r"""
        -- The parts of a sample's identity and of a run-level figure's name as columns, so SQL
        -- never parses strings: the item a sample belongs to, its turn (multi-turn generation,
        -- sample id `<item>#t<k>`, and judge runs over it) and the concurrency level a latency
        -- request was sent at (`<item>@c<c>`); a run figure's declared family
        -- (`latency_s_p{q}_{bucket}`) and its concurrency, percentile, prompt-length bucket, label
        -- and judged dimension (filled from the metric declarations when the store is migrated:
        -- harness.store.db.Store.fill_name_parts).
        ALTER TABLE samples ADD COLUMN item_id VARCHAR;
        ALTER TABLE samples ADD COLUMN turn INTEGER;
        ALTER TABLE samples ADD COLUMN concurrency INTEGER;
        UPDATE samples SET item_id = sample_id;
        -- Only where the suffix was written by harness: turns of multi-turn generation runs (and
        -- of judge runs over them), requests of latency runs. A user's own id that happens to end
        -- in `#t2` elsewhere stays whole.
        UPDATE samples SET
            item_id = regexp_replace(sample_id, '#t[0-9]+$', ''),
            turn = CAST(regexp_extract(sample_id, '#t([0-9]+)$', 1) AS INTEGER)
        WHERE regexp_matches(sample_id, '#t[0-9]+$') AND run_id IN (
            SELECT run_id FROM runs
            WHERE task_type = 'generation' AND coalesce(json_extract(task_config, '$.multi_turn')::VARCHAR, 'null') <> 'null'
            UNION ALL
            SELECT j.run_id FROM runs j JOIN runs g ON g.run_id = json_extract_string(j.judge, '$.judged_run')
            WHERE j.task_type LIKE 'judge_%'
              AND coalesce(json_extract(g.task_config, '$.multi_turn')::VARCHAR, 'null') <> 'null');
        UPDATE samples SET
            item_id = regexp_replace(sample_id, '@c[0-9]+$', ''),
            concurrency = CAST(regexp_extract(sample_id, '@c([0-9]+)$', 1) AS INTEGER)
        WHERE regexp_matches(sample_id, '@c[0-9]+$') AND run_id IN (SELECT run_id FROM runs WHERE task_type = 'latency');
        ALTER TABLE run_stats ADD COLUMN family VARCHAR;
        ALTER TABLE run_stats ADD COLUMN concurrency INTEGER;
        ALTER TABLE run_stats ADD COLUMN percentile DOUBLE;
        ALTER TABLE run_stats ADD COLUMN bucket VARCHAR;
        ALTER TABLE run_stats ADD COLUMN label VARCHAR;
        ALTER TABLE run_stats ADD COLUMN dimension VARCHAR;
        """,
    ),
    (
        "011_item_content_hash",
        r"""
        -- Each sample's item as rendered before the model saw it (prompt or user turns, options,
        -- references), hashed: two runs pair only on items whose content is identical. NULL for
        -- rows written before: readers fall back to the stored prompt and reference.
        ALTER TABLE samples ADD COLUMN content_hash VARCHAR;
        """,
    ),
    (
        "013_run_chat_template",
        r"""
        -- Whether the run's prompts were laid out with the model's chat template, which template
        -- (its hash and where it was read) and why (the models file's setting, the auto rule), as
        -- JSON. NULL for runs written before: plain prompts.
        ALTER TABLE runs ADD COLUMN chat_template JSON;
        """,
    ),
    (
        "014_noise_bands",
        r"""
        -- `harness noise`: how far a variant's item-level metric moves under serving settings that
        -- should not matter (batch size, threads, seed, another backend), on a seeded slice.
        CREATE TABLE IF NOT EXISTS noise_bands (
            variant VARCHAR NOT NULL,
            variant_key VARCHAR NOT NULL,   -- the weights the band was measured on
            suite VARCHAR NOT NULL,
            task VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            data_hash VARCHAR,
            prompt_hash VARCHAR,
            n_items INTEGER,                -- items in the slice
            reference DOUBLE,               -- the metric's mean as declared
            band DOUBLE,                    -- the largest distance of any setting's mean from it
            by_setting JSON,                -- {setting: mean}
            created_at TIMESTAMP,
            harness_version VARCHAR
        );
        """,
    ),
    (
        "015_sample_clusters",
        r"""
        -- Items that are not independent draws share a cluster (a task's cluster_field, HaluEval's
        -- two answers over one source): statistics resample clusters. NULL: the item is its own
        -- cluster (a multi-turn item's turns share its item_id).
        ALTER TABLE samples ADD COLUMN cluster VARCHAR;
        """,
    ),
    (
        "016_run_backend_details",
        r"""
        -- What the serving side reported about itself for the run (model path, adapters, max length,
        -- whether prefix reuse was on and the check behind it), as JSON. NULL for runs written before.
        ALTER TABLE runs ADD COLUMN backend_details JSON;
        """,
    ),
    (
        "017_run_tags",
        r"""
        -- Named sets of runs (`harness tag`, `harness gate --tag`): a release's runs, so a later
        -- gate rule `since: <tag>` compares a variant with the run that shipped under the tag and
        -- the report's trends can be read per tag.
        CREATE TABLE run_tags (
            tag        VARCHAR NOT NULL,
            run_id     VARCHAR NOT NULL,
            variant    VARCHAR NOT NULL,
            task       VARCHAR NOT NULL,
            tagged_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (tag, run_id)
        );
        """,
    ),
    (
        "018_outcomes",
        r"""
        -- Online outcomes of published drafts (`harness outcomes import`): one row per post, keyed
        -- by the file it came from and its line; a re-import of the same file replaces its rows.
        CREATE TABLE outcomes (
            source         VARCHAR NOT NULL,
            line           INTEGER NOT NULL,
            variant        VARCHAR NOT NULL,
            item_id        VARCHAR,
            impressions    DOUBLE NOT NULL,
            likes          DOUBLE,
            reposts        DOUBLE,
            replies        DOUBLE,
            used           BOOLEAN,            -- used without heavy edits
            edit_seconds   DOUBLE,
            draft          VARCHAR,
            published      VARCHAR,
            imported_at    TIMESTAMP NOT NULL,
            PRIMARY KEY (source, line)
        );
        """,
    ),
]
