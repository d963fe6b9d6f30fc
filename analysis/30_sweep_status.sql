-- sweep_status
-- grain: one row per sweep (sweep)
-- How many of a sweep's runs are in each lifecycle state
-- (pending -> running -> finished | failed | stopped | cancelled).
create or replace view sweep_status as
with sweep_rows as (
    select sweep, created_at, updated_at from staging_sweeps
),
run_rows as (
    select sweep, status from staging_runs
),
counts as (
    select
        sweep,
        count(*) as runs,
        count(*) filter (where status = 'pending') as pending,
        count(*) filter (where status = 'running') as running,
        count(*) filter (where status = 'finished') as finished,
        count(*) filter (where status = 'failed') as failed,
        count(*) filter (where status = 'stopped') as stopped,
        count(*) filter (where status = 'cancelled') as cancelled
    from run_rows
    group by sweep
),
final as (
    select sweep_rows.sweep, counts.* exclude (sweep), date_trunc('second', sweep_rows.updated_at) as updated_at
    from sweep_rows
    left join counts using (sweep)
)
select * from final;
