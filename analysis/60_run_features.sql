-- run_features
-- grain: one row per run (run_id)
-- Features: what the diagnosis rules read, per run. For each curve (train_loss, val_loss,
-- train_acc, val_acc, val_r2, weight_norm, sigma_max_hh, pred_std): its first
-- window, best window and the step that window ends at, its final 20 % (mean of windows
-- 16-19, their lowest, and how many there are: a loss that "rose and stayed" is high in
-- at least two of them; for val_loss also the best before them), its last
-- window, and the first non-finite step; sigma_max_hh and pred_std also
-- as unordered lists of {step, value} windows, for onsets (a filter and a min, no sort). The
-- training loss also keeps its last window and its tail (the lowest of its last two windows,
-- or the last alone when that holds one logged point: an epoch-level log's last epoch), for a
-- late jump. Joined with the hyper-parameters the fixes refer to, and with the chance level of
-- the run's score and loss (1/C and ln C for C classes; 0 and the target variance for
-- regression, its spread given in an import's params or logged at step 0). has_baseline: the log holds an untrained evaluation (a validation metric at
-- step 0 with no training loss there; a training loss at step 0 means step 0 is the end of a
-- first epoch, as in a Keras CSV). With one, the best validation score skips that untrained
-- window. A trial the early stop ended (training.early_stop logged early_stopped) carries that
-- step and its stop_reason. val_loss_always_falling: every validation window set a new best.
create or replace view run_features as
with curves as (
    select * from run_curves
),
per_metric as (
    select
        run_id,
        metric,
        arg_min(mean_value, window_index) as first_value,
        min(mean_value) as min_value,
        arg_min(last_step, mean_value) as min_step,
        max(mean_value) as max_value,
        max(mean_value) filter (where first_step > 0) as max_after_start,
        arg_max(last_step, mean_value) as max_step,
        avg(mean_value) filter (where window_index >= 16) as final_value,
        min(mean_value) filter (where window_index >= 16) as final_floor,
        min(mean_value) filter (where window_index < 16) as before_final_best,
        count(*) filter (where window_index >= 16) as final_windows,
        arg_max(mean_value, window_index) as last_value,
        case when arg_max(first_step = last_step, window_index) then arg_max(mean_value, window_index)
            else list_min(arg_max(mean_value, window_index, 2)) end as tail_floor,
        min(first_step) as first_step,
        min(nonfinite_step) as nonfinite_step,
        list({'step': first_step, 'value': mean_value}) filter (where metric in ('sigma_max_hh', 'pred_std')) as series,
        max(last_step) as last_step
    from curves
    group by all
),
pivoted as (
    select
        run_id,
        max(last_step) as last_step,
        min(nonfinite_step) as nonfinite_step,
        arg_min(metric, nonfinite_step) as nonfinite_metric,
        any_value(first_value) filter (where metric = 'train_loss') as train_loss_first,
        any_value(min_value) filter (where metric = 'train_loss') as train_loss_best,
        any_value(min_step) filter (where metric = 'train_loss') as train_loss_best_step,
        any_value(final_value) filter (where metric = 'train_loss') as train_loss_final,
        any_value(final_floor) filter (where metric = 'train_loss') as train_loss_final_floor,
        any_value(final_windows) filter (where metric = 'train_loss') as train_loss_final_windows,
        any_value(before_final_best) filter (where metric = 'train_loss') as train_loss_before_final_best,
        any_value(tail_floor) filter (where metric = 'train_loss') as train_loss_tail_floor,
        any_value(first_step) filter (where metric = 'train_loss') as train_loss_first_step,
        min(first_step) filter (where metric in ('val_loss', 'val_acc', 'val_r2')) as eval_first_step,
        any_value(first_value) filter (where metric = 'val_loss') as val_loss_first,
        any_value(min_value) filter (where metric = 'val_loss') as val_loss_best,
        any_value(min_step) filter (where metric = 'val_loss') as val_loss_best_step,
        any_value(final_value) filter (where metric = 'val_loss') as val_loss_final,
        any_value(final_floor) filter (where metric = 'val_loss') as val_loss_final_floor,
        any_value(final_windows) filter (where metric = 'val_loss') as val_loss_final_windows,
        any_value(before_final_best) filter (where metric = 'val_loss') as val_loss_before_final_best,
        any_value(last_value) filter (where metric = 'val_loss') as val_loss_last,
        any_value(max_value) filter (where metric = 'train_acc') as train_acc_best,
        any_value(final_value) filter (where metric = 'train_acc') as train_acc_final,
        any_value(max_value) filter (where metric = 'val_acc') as val_acc_best,
        any_value(max_after_start) filter (where metric = 'val_acc') as val_acc_trained_best,
        any_value(max_step) filter (where metric = 'val_acc') as val_acc_best_step,
        any_value(final_value) filter (where metric = 'val_acc') as val_acc_final,
        any_value(max_value) filter (where metric = 'val_r2') as val_r2_best,
        any_value(max_after_start) filter (where metric = 'val_r2') as val_r2_trained_best,
        any_value(final_value) filter (where metric = 'val_r2') as val_r2_final,
        any_value(first_value) filter (where metric = 'weight_norm') as weight_norm_first,
        any_value(last_value) filter (where metric = 'weight_norm') as weight_norm_last,
        any_value(first_value) filter (where metric = 'sigma_max_hh') as sigma_first,
        any_value(last_value) filter (where metric = 'sigma_max_hh') as sigma_last,
        any_value(series) filter (where metric = 'sigma_max_hh') as sigma_series,
        any_value(first_value) filter (where metric = 'pred_std') as pred_std_first,
        any_value(last_value) filter (where metric = 'pred_std') as pred_std_last,
        any_value(series) filter (where metric = 'pred_std') as pred_std_series,
        any_value(first_value) filter (where metric = 'target_std') as logged_target_std,
        any_value(first_value) filter (where metric = 'n_classes') as logged_n_classes,
        bool_or(metric = 'val_r2') as has_r2
    from per_metric
    group by run_id
),
-- the validation loss set a new best in every window (a steady descent: a slow learner's,
-- not the noise of a loss at its floor), over how many windows
val_descent as (
    select
        run_id,
        bool_and(coalesce(mean_value < best_before, true)) as val_loss_always_falling,
        count(*) as val_loss_windows
    from (
        select
            run_id,
            mean_value,
            min(mean_value) over (
                partition by run_id order by window_index rows between unbounded preceding and 1 preceding
            ) as best_before
        from curves
        where metric = 'val_loss'
    )
    group by run_id
),
early_stops as (
    select
        staging_metrics.run_id,
        min(staging_metrics.step) as early_stop_step,
        any_value(staging_runs.stop_reason) as early_stop_reason
    from staging_metrics
    join staging_runs using (run_id)
    where staging_metrics.metric = 'early_stopped'
    group by staging_metrics.run_id
),
params as (
    select
        run_id, sweep, task_kind, n_classes, optimizer, lr, beta1, weight_decay, weight_decay_on, clip_grad_norm, lr_schedule,
        target_std as given_target_std
    from run_params
),
baselined as (
    select
        *,
        coalesce(eval_first_step = 0 and coalesce(train_loss_first_step > 0, true), false) as has_baseline,
        coalesce(params.n_classes, try_cast(pivoted.logged_n_classes as bigint)) as classes,
        -- the targets' spread: given in an import's params (they override the source), else
        -- logged at step 0 by rnnsweep
        coalesce(params.given_target_std, pivoted.logged_target_std) as target_std
    from params
    join pivoted using (run_id)
    left join val_descent using (run_id)
),
final as (
    select
        * exclude (logged_n_classes, logged_target_std, given_target_std, has_r2, val_acc_trained_best, val_r2_trained_best)
            replace (
                -- the task's kind, from the params or the metrics it logs (R2: regression)
                case
                    when task_kind = 'regression' or has_r2 then 'regression'
                    when task_kind = 'classification' or classes >= 2 then 'classification'
                end as task_kind,
                case when has_baseline then coalesce(val_acc_trained_best, val_acc_best) else val_acc_best end as val_acc_best,
                case when has_baseline then coalesce(val_r2_trained_best, val_r2_best) else val_r2_best end as val_r2_best
            ),
        case
            when task_kind = 'regression' or has_r2 then 0.0
            when classes >= 2 then 1.0 / classes
        end as chance_score,
        -- the loss of a model that learned nothing about the input: uniform over C classes
        -- (cross-entropy), the targets' mean (squared error, when their spread is logged)
        case
            when (task_kind = 'regression' or has_r2) and target_std > 0 then target_std * target_std
            when coalesce(task_kind, 'classification') = 'classification' and not has_r2 and classes >= 2 then ln(classes)
        end as chance_loss,
        early_stops.early_stop_step,
        early_stops.early_stop_reason
    from baselined
    left join early_stops using (run_id)
)
select * from final;
