-- run_signals
-- grain: one row per run (run_id)
-- Diagnosis inputs: run_features with the signals that more than one rule, the fixes or the
-- healthy verdict read: the run's best validation score (val_acc, else val_r2) with its chance
-- level in words, the spread below which predictions count as constant, whether the run
-- learned at all, and whether its training loss jumped above the untrained model's early on.
-- A signal only one rule reads lives in that rule's CTE (70_rule_hits.sql).
create or replace view run_signals as
with features as (
    select * from run_features
),
threshold_values as (
    pivot (select name, value from thresholds)
    on name in ('chance_margin', 'flat_loss', 'constant_pred_ratio', 'constant_pred_abs', 'diverge_explode')
    using any_value(value)
),
signals as (
    select
        features.*,
        coalesce(val_acc_best, val_r2_best) as score_best,
        case when val_acc_best is not null then 'val_acc' when val_r2_best is not null then 'val_r2' end as score_name,
        case when target_std > 0 then constant_pred_ratio * target_std else constant_pred_abs end as pred_std_floor,
        -- at chance where a score is logged; else the loss barely moved from its first window
        case
            when coalesce(val_acc_best, val_r2_best) is not null and chance_score is not null
                then coalesce(val_acc_best, val_r2_best) <= chance_score + chance_margin
            when val_loss_first > 0 then val_loss_best >= flat_loss * val_loss_first
            when train_loss_first > 0 then train_loss_best >= flat_loss * train_loss_first
        end as not_learning,
        -- the first window of training already far above the untrained model's loss: a jump
        train_loss_first >= diverge_explode * val_loss_first as early_jump
    from features, threshold_values
),
final as (
    select
        *,
        case when score_best is not null then printf('best %s %.3g, chance %.3g', score_name, score_best, chance_score) end as score_text
    from signals
)
select * from final;
