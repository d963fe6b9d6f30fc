-- fix_outcomes
-- grain: one row per follow-up run (follow_up)
-- Before and after: every run that follows up another (a `rnnsweep fix` trial: run_params.fixes
-- names the original) beside the run it fixes. Each side's label (the diagnosis) and best
-- validation score, the score being the original's (run_results.score: val_acc or val_r2
-- where it logged one, higher is better; else val_loss), so both sides are compared on the
-- same number. `fixed`: the follow-up is labelled healthy. follow_up_index: its place in its grid. A follow-up whose original is no
-- longer in the warehouse keeps its row, with the before side null.
create or replace view fix_outcomes as
with follow_ups as (
    select run_id, sweep, trial_index, fixes, status from run_params where fixes is not null
),
originals as (
    select run_id, sweep from run_params
),
labels as (
    select run_id, label from diagnosis
),
results as (
    select run_id, score, best_score, best_val_loss, best_val_acc, best_val_r2 from run_results
),
final as (
    select
        follow_ups.fixes as run_id,
        originals.sweep,
        original_label.label as label_before,
        follow_ups.run_id as follow_up,
        follow_ups.sweep as follow_up_sweep,
        follow_ups.trial_index as follow_up_index,
        follow_ups.status as follow_up_status,
        follow_up_label.label as label_after,
        original_result.score,
        original_result.best_score as best_before,
        case original_result.score
            when 'val_acc' then follow_up_result.best_val_acc
            when 'val_r2' then follow_up_result.best_val_r2
            else follow_up_result.best_val_loss
        end as best_after,
        label_after = 'healthy' as fixed
    from follow_ups
    left join originals on originals.run_id = follow_ups.fixes
    left join labels as original_label on original_label.run_id = follow_ups.fixes
    left join labels as follow_up_label on follow_up_label.run_id = follow_ups.run_id
    left join results as original_result on original_result.run_id = follow_ups.fixes
    left join results as follow_up_result on follow_up_result.run_id = follow_ups.run_id
)
select * from final;
