-- run_signals
-- grain: one row per run (run_id)
-- Diagnosis inputs: run_features with the signals that more than one rule, the fixes or the
-- healthy verdict read: the run's best validation score (val_acc, else val_r2) with its chance
-- level in words, the spread below which predictions count as constant, whether the run
-- learned at all, whether it is a slow learner (constant so far, loss still falling), and
-- whether its training loss jumped above the untrained model's early on.
-- "Learned" is judged only against what the log lets us know: the score against its chance
-- level; else the best loss against the chance loss (ln C; the targets' variance), or against
-- an untrained evaluation at step 0 when it barely moved from it. A loss that fell from the
-- first logged point proves nothing when that point is already after training began (the
-- first epoch often does most of the learning), nor, for regression, that the model learned
-- more than the targets' mean: then not_learning is null, unknown, and the run is healthy
-- with low confidence ("no baseline"), never a pathology. A signal only one rule reads lives
-- in that rule's CTE (70_rule_hits.sql).
create or replace view run_signals as
with features as (
    select * from run_features
),
threshold_values as (
    pivot (select name, value from thresholds)
    on name in (
        'chance_margin', 'flat_loss', 'constant_pred_ratio', 'constant_pred_abs', 'diverge_explode', 'still_falling',
        'still_falling_pace'
    )
    using any_value(value)
),
losses as (
    select
        features.*,
        threshold_values.*,
        coalesce(val_acc_best, val_r2_best) as score_best,
        coalesce(val_loss_best, train_loss_best) as loss_best,
        -- null where unknowable: no chance loss, or no untrained evaluation to compare with
        coalesce(val_loss_best, train_loss_best) >= flat_loss * chance_loss as flat_vs_chance,
        case when has_baseline then val_loss_best >= flat_loss * val_loss_first end as flat_vs_baseline
    from features, threshold_values
),
signals as (
    select
        * exclude (
            flat_loss, chance_margin, constant_pred_ratio, constant_pred_abs, diverge_explode, still_falling,
            still_falling_pace
        ),
        case when val_acc_best is not null then 'val_acc' when val_r2_best is not null then 'val_r2' end as score_name,
        case when target_std > 0 then constant_pred_ratio * target_std else constant_pred_abs end as pred_std_floor,
        score_best <= chance_score + chance_margin as at_chance,
        -- the loss never got away from chance (or from the untrained model): true; it did, and
        -- that means learning (a chance loss is known, or a classifier improved on its
        -- untrained evaluation): false; else unknown
        case
            when flat_vs_chance or flat_vs_baseline then true
            when flat_vs_chance is not null then false
            when flat_vs_baseline is not null and task_kind = 'classification' then false
        end as loss_flat,
        -- still learning at the end (a slow learner, not a constant output): its training loss
        -- fell in its final 20 %, or its validation loss (smoother: no batch noise) set a new
        -- best at every one of at least three windows and fell in its final 20 % at a pace that
        -- has not died out
        coalesce(train_loss_final_floor <= (1 - still_falling) * train_loss_before_final_best, false)
            or coalesce(
                val_loss_always_falling and val_loss_windows >= 3
                    and val_loss_before_final_best - val_loss_final_floor
                        >= still_falling_pace * (val_loss_first - val_loss_final_floor),
                false) as loss_still_falling,
        -- the first window of training already far above the untrained model's loss: a jump
        has_baseline and val_loss_first > 0 and train_loss_first >= diverge_explode * val_loss_first as early_jump
    from losses
),
final as (
    select
        *,
        case
            when score_best is not null and chance_score is not null then at_chance
            else loss_flat
        end as not_learning,
        -- the same output for every input so far, but still learning: the spread rule leaves it,
        -- the healthy verdict says so
        coalesce(pred_std_last < pred_std_floor and loss_still_falling, false) as slow_learner,
        case when score_best is not null then printf('best %s %.3g, chance %.3g', score_name, score_best, chance_score) end as score_text
    from signals
)
select * from final;
