-- staging_sweeps
-- grain: one row per sweep (sweep)
-- Staging: the raw sweeps table as the analysis layers read it, its key renamed to sweep,
-- the name every other relation joins on.
create or replace view staging_sweeps as
with source as (
    select * from sweeps
),
final as (
    select
        name as sweep,
        grid_path,
        grid_text,
        storage_uri,
        axes,
        created_at,
        updated_at
    from source
)
select * from final;
