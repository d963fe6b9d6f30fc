-- diagnosis
-- grain: one row per run
-- Diagnosis: one label per run (healthy, overfitting, l2_collapsed, diverged,
-- constant_output), how sure (high: decided by an instrumented signal such as sigma_max or
-- prediction spread; medium: by the shape of the loss curves; low: by hyper-parameters and
-- flat curves only), the step where the symptom began, the evidence (metric, value,
-- threshold, and a sentence) and a concrete fix. Rules, first match wins:
--   1 diverged         a loss or gradient went NaN/Inf, or the early stop ended the trial
--                      (training.early_stop = "diverged" logged early_stopped)
--   2 l2_collapsed     sigma_max(W_hh) < 1 and falling, and the run did not learn or ran
--                      under strong L2 (runs that learn grow W_hh); without sigma: the
--                      weight norm halved and the run did not learn
--   3 l2_collapsed     the run did not learn under strong L2, its predictions flat (or not
--                      logged): L2 on the other weights silenced the output layer
--   4 diverged         train loss rose well above its best and stayed, or ended far above
--                      where it started (the untrained model's loss)
--   5 constant_output  predictions barely vary across inputs at the end, without strong L2
--   6 overfitting      validation loss rose well above its best, giving back much of its
--                      gain (or never gaining), while training fit its data
--   7 constant_output  score at chance and loss flat: nothing learned, no strong L2 to blame
--   8 healthy          none of the above: noisy curves and early plateaus included
-- Weight-shrink rules are gated (did not learn, or strong L2), as AUTOTRAINER gates its
-- gradient rules, so healthy runs with small W_hh are not flagged. Thresholds: see the
-- thresholds view. Measured on tests/corpus (75 real runs with injected faults): see
-- tests/test_corpus.py.
create or replace view diagnosis as
with features as (
    select * from run_features
),
t as (
    select
        max(value) filter (where name = 'diverge_give_back') as diverge_give_back,
        max(value) filter (where name = 'diverge_min_rise') as diverge_min_rise,
        max(value) filter (where name = 'diverge_explode') as diverge_explode,
        max(value) filter (where name = 'overfit_val_rise') as overfit_val_rise,
        max(value) filter (where name = 'overfit_give_back') as overfit_give_back,
        max(value) filter (where name = 'overfit_train_fit') as overfit_train_fit,
        max(value) filter (where name = 'overfit_train_slack') as overfit_train_slack,
        max(value) filter (where name = 'overfit_acc_drop') as overfit_acc_drop,
        max(value) filter (where name = 'collapse_sigma') as collapse_sigma,
        max(value) filter (where name = 'collapse_weight_shrink') as collapse_weight_shrink,
        max(value) filter (where name = 'l2_strong') as l2_strong,
        max(value) filter (where name = 'chance_margin') as chance_margin,
        max(value) filter (where name = 'flat_loss') as flat_loss,
        max(value) filter (where name = 'constant_pred_ratio') as constant_pred_ratio,
        max(value) filter (where name = 'constant_pred_abs') as constant_pred_abs
    from thresholds
),
signals as (
    select
        features.*,
        t.*,
        coalesce(val_acc_best, val_r2_best) as score_best,
        case when val_acc_best is not null then 'val_acc' when val_r2_best is not null then 'val_r2' end as score_name,
        case when target_std > 0 then constant_pred_ratio * target_std else constant_pred_abs end as pred_std_floor,
        case
            when coalesce(val_acc_best, val_r2_best) is not null and chance_score is not null
                then coalesce(val_acc_best, val_r2_best) <= chance_score + chance_margin
            when val_loss_first > 0 then val_loss_best >= flat_loss * val_loss_first
            when train_loss_first > 0 then train_loss_best >= flat_loss * train_loss_first
        end as not_learning,
        -- nothing about the input was learned: for accuracy, the loss did not improve either (a
        -- slow learner still at chance accuracy has a falling loss and is not this); R2 already
        -- measures the loss against predicting the mean, so R2 at chance is enough
        val_acc_best is null and val_r2_best is not null
            or coalesce(val_loss_best >= flat_loss * val_loss_first, train_loss_best >= flat_loss * train_loss_first, true) as loss_flat,
        sigma_last < collapse_sigma and sigma_last < sigma_first as sigma_collapsed,
        weight_norm_last < collapse_weight_shrink * weight_norm_first as weights_shrank,
        -- "rose and stayed": even the lowest of the final windows is up, and there are at least
        -- two of them (10+ evaluations), so one spike never decides
        train_loss_final_windows >= 2
            and train_loss_final_floor - train_loss_best >= diverge_give_back * (train_loss_first - train_loss_best)
            and train_loss_final_floor >= (1 + diverge_min_rise) * train_loss_best as loss_gave_back,
        train_loss_final >= diverge_explode * least(train_loss_first, coalesce(val_loss_first, train_loss_first)) as loss_exploded,
        -- the first window of training already far above the untrained model's loss: a jump
        train_loss_first >= diverge_explode * val_loss_first as early_jump,
        -- validation got worse by a margin that matters against what it had gained (or it never
        -- gained), while training fit its data and kept most of that fit
        val_loss_final_windows >= 2
            and val_loss_final_floor >= (1 + overfit_val_rise) * val_loss_best
            and val_loss_final_floor - val_loss_best >= overfit_give_back * (val_loss_first - val_loss_best)
            and coalesce(
                train_loss_final <= overfit_train_fit * train_loss_first
                    and train_loss_final - train_loss_best <= overfit_train_slack * (train_loss_first - train_loss_best),
                true) as val_loss_rose,
        val_loss_best is null
            and val_acc_best - val_acc_final >= overfit_acc_drop
            and train_acc_final >= train_acc_best - overfit_acc_drop as val_acc_fell
    from features, t
),
labelled as (
    select
        *,
        pred_std_last < pred_std_floor as predictions_flat,
        -- the last window where predictions still varied; a constant output began after it
        list_max(list_transform(list_filter(pred_std_series, lambda w: w.value >= pred_std_floor), lambda w: w.step)) as pred_std_last_varied,
        case
            when nonfinite_step is not null then 'diverged:nonfinite'
            when early_stop_step is not null then 'diverged:early_stop'
            when (not_learning or weight_decay >= l2_strong) and sigma_collapsed then 'l2_collapsed:weights'
            when not_learning and sigma_last is null and weights_shrank then 'l2_collapsed:weights'
            when not_learning and weight_decay >= l2_strong and coalesce(pred_std_last < pred_std_floor, true) then 'l2_collapsed:params'
            when loss_gave_back then 'diverged:gave_back'
            when loss_exploded then 'diverged:exploded'
            when pred_std_last < pred_std_floor then 'constant_output:spread'
            when val_loss_rose then 'overfitting:loss'
            when val_acc_fell then 'overfitting:acc'
            when not_learning and loss_flat then 'constant_output:flat'
            else 'healthy'
        end as rule
    from signals
),
explained as (
    select
        *,
        split_part(rule, ':', 1) as label,
        case
            when rule in ('diverged:nonfinite', 'diverged:early_stop', 'l2_collapsed:weights', 'constant_output:spread') then 'high'
            when rule = 'l2_collapsed:params' and pred_std_last is not null then 'medium'
            when rule = 'constant_output:flat' and score_best is not null then 'medium'
            when rule in ('l2_collapsed:params', 'constant_output:flat') then 'low'
            when rule = 'healthy' then case when train_loss_first is null then 'low' when sigma_last is null and pred_std_last is null then 'medium' else 'high' end
            else 'medium'
        end as confidence,
        case rule
            when 'diverged:nonfinite' then nonfinite_step
            when 'diverged:early_stop' then early_stop_step
            when 'l2_collapsed:weights' then coalesce(
                list_min(list_transform(list_filter(sigma_series, lambda w: w.value < collapse_sigma), lambda w: w.step)),
                train_loss_best_step)
            when 'l2_collapsed:params' then train_loss_best_step
            when 'constant_output:spread' then list_min(list_transform(
                list_filter(pred_std_series, lambda w: w.value < pred_std_floor and w.step > coalesce(pred_std_last_varied, -1)),
                lambda w: w.step))
            when 'diverged:gave_back' then train_loss_best_step
            when 'diverged:exploded' then train_loss_best_step
            when 'overfitting:loss' then val_loss_best_step
            when 'overfitting:acc' then val_acc_best_step
            when 'constant_output:flat' then train_loss_best_step
        end as onset_step,
        case rule
            when 'diverged:nonfinite' then nonfinite_metric
            when 'diverged:early_stop' then 'train_loss'
            when 'l2_collapsed:weights' then case when sigma_last is not null then 'sigma_max_hh' else 'weight_norm' end
            when 'l2_collapsed:params' then 'weight_decay'
            when 'constant_output:spread' then 'pred_std'
            when 'diverged:gave_back' then 'train_loss'
            when 'diverged:exploded' then 'train_loss'
            when 'overfitting:loss' then 'val_loss'
            when 'overfitting:acc' then 'val_acc'
            when 'constant_output:flat' then coalesce(score_name, 'val_loss')
        end as metric,
        case rule
            when 'diverged:early_stop' then train_loss_final
            when 'l2_collapsed:weights' then coalesce(sigma_last, weight_norm_last)
            when 'l2_collapsed:params' then weight_decay
            when 'constant_output:spread' then pred_std_last
            when 'diverged:gave_back' then train_loss_final
            when 'diverged:exploded' then train_loss_final
            when 'overfitting:loss' then val_loss_final
            when 'overfitting:acc' then val_acc_final
            when 'constant_output:flat' then coalesce(score_best, val_loss_best)
        end as value,
        case rule
            when 'l2_collapsed:weights' then coalesce(case when sigma_last is not null then collapse_sigma end, collapse_weight_shrink * weight_norm_first)
            when 'l2_collapsed:params' then l2_strong
            when 'constant_output:spread' then pred_std_floor
            when 'diverged:gave_back' then (1 + diverge_min_rise) * train_loss_best
            when 'diverged:exploded' then diverge_explode * least(train_loss_first, coalesce(val_loss_first, train_loss_first))
            when 'overfitting:loss' then (1 + overfit_val_rise) * val_loss_best
            when 'overfitting:acc' then val_acc_best - overfit_acc_drop
            when 'constant_output:flat' then coalesce(chance_score + chance_margin, flat_loss * val_loss_first)
        end as threshold,
        case when score_best is not null then printf('best %s %.3g, chance %.3g', score_name, score_best, chance_score) end as score_text
    from labelled
),
final as (
    select
        run_id,
        sweep,
        label,
        confidence,
        onset_step,
        case rule
            when 'diverged:nonfinite' then printf('%s became NaN/Inf at step %d', nonfinite_metric, nonfinite_step)
            when 'diverged:early_stop' then concat_ws('; ',
                printf('stopped early at step %d (training.early_stop), %s', early_stop_step,
                    coalesce(early_stop_reason, 'its training loss diverged')),
                printf('train loss best %.3g (step %d), %.3g over the last 20%% of the run', train_loss_best, train_loss_best_step, train_loss_final))
            when 'l2_collapsed:weights' then concat_ws('; ',
                case when sigma_last is not null
                    then printf('sigma_max(W_hh) fell from %.3g to %.3g, below %g: memory fades geometrically', sigma_first, sigma_last, collapse_sigma)
                    else printf('weight norm shrank from %.3g to %.3g', weight_norm_first, weight_norm_last) end,
                case when weight_decay > 0 then printf('weight_decay %g', weight_decay) end,
                coalesce(score_text, printf('best val_loss %.3g vs %.3g at the start', val_loss_best, val_loss_first)) || ': not learning')
            when 'l2_collapsed:params' then concat_ws('; ',
                printf('weight_decay %g >= %g', weight_decay, l2_strong)
                    || case when weight_decay_on = 'non_recurrent' then ' on the input and output weights' else '' end,
                case when pred_std_last is not null
                    then printf('predictions are flat (std %.3g < %.3g)', pred_std_last, pred_std_floor)
                        || case when sigma_last is not null then printf(' though sigma_max(W_hh) is %.3g: L2 silenced the output layer', sigma_last) else '' end
                end,
                coalesce(score_text, printf('best val_loss %.3g vs %.3g at the start', val_loss_best, val_loss_first)) || ': not learning')
            when 'constant_output:spread' then concat_ws('; ',
                printf('prediction std across inputs %.3g < %.3g', pred_std_last, pred_std_floor)
                    || case when target_std > 0 then printf(' (%g of the targets'' std %.3g)', constant_pred_ratio, target_std) else '' end
                    || ': the same output for every input',
                case when sigma_last is not null then printf('weights are normal-sized (sigma_max(W_hh) %.3g)', sigma_last) end)
            when 'diverged:gave_back' then printf(
                'train loss rose from its best %.3g (step %d) to %.3g over the last 20%% of training, giving back %.0f%% of what it had learned (>= %.0f%%)',
                train_loss_best, train_loss_best_step, train_loss_final,
                100 * (train_loss_final - train_loss_best) / greatest(train_loss_first - train_loss_best, 1e-12), 100 * diverge_give_back)
            when 'diverged:exploded' then printf('train loss ended at %.3g, %.2gx the %.3g it started from (>= %gx)',
                train_loss_final, train_loss_final / least(train_loss_first, coalesce(val_loss_first, train_loss_first)),
                least(train_loss_first, coalesce(val_loss_first, train_loss_first)), diverge_explode)
            when 'overfitting:loss' then printf('validation loss rose from its best %.3g (step %d) to %.3g (+%.0f%%, > %.0f%%) while train loss held at %.3g',
                val_loss_best, val_loss_best_step, val_loss_final, 100 * (val_loss_final / val_loss_best - 1), 100 * overfit_val_rise, train_loss_final)
            when 'overfitting:acc' then printf('validation accuracy fell from its best %.3g (step %d) to %.3g while train accuracy held at %.3g',
                val_acc_best, val_acc_best_step, val_acc_final, train_acc_final)
            when 'constant_output:flat' then concat_ws('; ',
                case when early_jump then printf('the train loss jumped to %.2gx the untrained model''s early on', train_loss_first / val_loss_first) end,
                score_text,
                printf('best val_loss %.3g vs %.3g at the start', coalesce(val_loss_best, train_loss_best), coalesce(val_loss_first, train_loss_first)))
                || ': the output carries nothing about the input, and no strong L2 to blame'
            else concat_ws('; ',
                case when val_loss_best is not null then printf('best val_loss %.3g at step %d', val_loss_best, val_loss_best_step) end,
                score_text, 'no rule fired')
        end as evidence,
        metric,
        value,
        threshold,
        case label
            when 'diverged' then concat_ws('; ',
                case when rule = 'diverged:nonfinite' then 'check the inputs for NaN/Inf and normalise them (zero mean, unit variance)' end,
                case when lr is not null then printf('lower optimizer.lr %g -> %g', lr, lr / 10) else 'lower the learning rate 10x' end,
                case when optimizer = 'adam' and beta1 < 0.9 then printf('set optimizer.betas = [0.9, 0.999] (beta1 is %g)', beta1) end,
                case when coalesce(clip_grad_norm, 0) = 0 then 'clip gradients (training.clip_grad_norm = 1.0)' end,
                case when rule <> 'diverged:nonfinite' and coalesce(lr_schedule, 'constant') = 'constant' then 'or decay the lr (training.lr_schedule = "cosine")' end)
            when 'l2_collapsed' then concat_ws('; ',
                case when coalesce(weight_decay_on, 'all') = 'all' then 'stop decaying the recurrent weights (optimizer.weight_decay_on = "non_recurrent")' end,
                case when weight_decay > 0 then printf('shrink optimizer.weight_decay %g -> %g', weight_decay, weight_decay / 10) end,
                'or regularise with dropout instead (model.dropout, with model.layers >= 2)')
            when 'constant_output' then concat_ws('; ',
                case when early_jump and lr is not null then printf('the loss jumped first: lower optimizer.lr %g -> %g and clip gradients (training.clip_grad_norm = 1.0)', lr, lr / 10) end,
                'the output ignores the input: check inputs for NaN, zeroed or constant features, and normalise them',
                'check the labels (shuffled? one class? training.pos_weight for rare positives)',
                case when lr is not null and not coalesce(early_jump, false) then printf('if it followed a loss jump, lower optimizer.lr %g -> %g and clip gradients', lr, lr / 10) end)
            when 'overfitting' then concat_ws('; ',
                printf('stop at step %d, the best validation loss', onset_step),
                'add dropout (model.dropout, model.layers >= 2) or L2 on non-recurrent weights (optimizer.weight_decay_on = "non_recurrent")',
                'or train on more data')
        end as fix
    from explained
)
select * from final;
