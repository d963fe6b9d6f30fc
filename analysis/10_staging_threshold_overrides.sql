-- staging_threshold_overrides
-- grain: one row per overridden threshold (name)
-- Staging: the warehouse's own threshold values (`rnnsweep thresholds --set NAME=VALUE`), as
-- the thresholds view reads them.
create or replace view staging_threshold_overrides as
with source as (
    select * from threshold_overrides
),
final as (
    select
        name,
        value,
        set_at
    from source
)
select * from final;
