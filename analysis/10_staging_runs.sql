-- staging_runs
-- grain: one row per run (run_id)
-- Staging: the raw runs table as the analysis layers read it, one column per column the
-- loader writes (config stays the resolved JSON; run_params types it). Every later view
-- reads runs through here, so a change to the raw table is met in one place.
create or replace view staging_runs as
with source as (
    select * from runs
),
final as (
    select
        run_id,
        sweep,
        trial_index,
        status,
        source,
        attempts,
        config,
        node,
        submitted_at,
        started_at,
        ended_at,
        steps,
        stop_reason,
        error
    from source
)
select * from final;
