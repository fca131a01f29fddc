"""The pipeline's own floor: its config and how a job starts (above the engines, below the
jobs).

- `pipeline.config`      PipelineConfig (every section), profiles in configs/pipeline/,
                         `load_config(profile, overrides)`
- `pipeline.entry`       the one argument parser (--ds, --profile, --set), logging and the
                         Spark job entry `spark_job_main`
- `pipeline.provenance`  git SHA and the candidate's artifact folder for a config and day
"""
