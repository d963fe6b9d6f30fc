-- run_results
-- grain: one row per run (run_id)
-- Features: each run's hyper-parameters (run_params) beside the headline numbers of its
-- curves: the last and best validation loss, the last and best task score (val_acc for
-- classification: balanced accuracy on binary tasks; val_r2 for regression), the last
-- training loss, and how far it got; `score` names the headline one (val_acc, val_r2, else
-- val_loss: higher is better for the first two) and `best_score` is its best value. Runs with
-- no metrics yet have nulls.
create or replace view run_results as
with params as (
    select * from run_params
),
metric_rows as (
    select run_id, step, metric, value from staging_metrics
),
per_run as (
    select
        run_id,
        max(step) as last_step,
        arg_max(value, step) filter (where metric = 'train_loss') as final_train_loss,
        arg_max(value, step) filter (where metric = 'val_loss') as final_val_loss,
        min(value) filter (where metric = 'val_loss' and isfinite(value)) as best_val_loss,
        arg_max(value, step) filter (where metric = 'val_acc') as final_val_acc,
        max(value) filter (where metric = 'val_acc') as best_val_acc,
        arg_max(value, step) filter (where metric = 'val_r2') as final_val_r2,
        max(value) filter (where metric = 'val_r2') as best_val_r2,
        arg_max(value, step) filter (where metric = 'pred_std') as final_pred_std,
        arg_max(value, step) filter (where metric = 'sigma_max_hh') as final_sigma_max_hh,
        bool_or(metric = 'nonfinite') as went_nonfinite
    from metric_rows
    group by run_id
),
final as (
    select
        params.*,
        per_run.* exclude (run_id),
        -- the run's headline score: the task score where it logged one, else the loss
        case
            when per_run.best_val_acc is not null then 'val_acc'
            when per_run.best_val_r2 is not null then 'val_r2'
            when per_run.best_val_loss is not null then 'val_loss'
        end as score,
        coalesce(per_run.best_val_acc, per_run.best_val_r2, per_run.best_val_loss) as best_score
    from params
    left join per_run using (run_id)
)
select * from final;
