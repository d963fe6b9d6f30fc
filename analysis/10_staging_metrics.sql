-- staging_metrics
-- grain: one row per run, step and metric (run_id, step, metric)
-- Staging: the raw metrics table as the analysis layers read it. The loader keeps one row
-- per (run, step, metric): a retried run's latest attempt replaces what a dead one logged.
-- NaN and Inf are values here, not missing rows. Every later view reads metrics through here.
create or replace view staging_metrics as
with source as (
    select * from metrics
),
final as (
    select
        run_id,
        attempt,
        chunk,
        step,
        epoch,
        metric,
        value
    from source
)
select * from final;
