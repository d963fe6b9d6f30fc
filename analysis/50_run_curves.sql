-- run_curves
-- grain: one row per run, metric and window (run_id, metric, window_index)
-- Features: each diagnostic curve of a run cut into 20 equal windows of the run's steps
-- (0 .. runs.steps, which the loader keeps at the last logged step), with the mean of
-- the window's finite values, its first and last step, and its first non-finite step. A
-- per-step curve of 1,000 points and an epoch-level one of 20 both become 20 windows or
-- fewer, so the rules read rich and minimal logs alike, and noise averages out.
-- Single-valued metrics logged at step 0 (target_std, n_classes) come along as one window.
-- grad_norm and lr stay out: no rule reads them, and per step they are 2/3 of the rows.
create or replace view run_curves as
with spans as (
    select run_id, steps as last_step from staging_runs where steps is not null
),
points as (
    select run_id, metric, step, value
    from staging_metrics
    where metric in (
        'train_loss', 'val_loss', 'train_acc', 'val_acc', 'val_r2',
        'weight_norm', 'sigma_max_hh', 'pred_std', 'target_std', 'n_classes'
    )
),
windowed as (
    select
        points.run_id,
        points.metric,
        -- in double: 20 * step overflows bigint for steps past 4.6e17 (a timestamp logged as a step)
        least(19, floor(20.0 * points.step::double / (spans.last_step::double + 1)))::integer as window_index,
        points.step,
        points.value
    from points
    join spans using (run_id)
),
final as (
    select
        run_id,
        metric,
        window_index,
        min(step) as first_step,
        max(step) as last_step,
        avg(value) filter (where isfinite(value)) as mean_value,
        min(step) filter (where not isfinite(value)) as nonfinite_step
    from windowed
    group by all
)
select * from final;
