-- rule_hits
-- grain: one row per run and rule that fires on it (run_id, priority)
-- Rules: every diagnosis rule is one CTE below, yielding (run_id, label, priority,
-- confidence, onset_step, metric, value, threshold, evidence) for the runs it fires on. The
-- diagnosis keeps each run's lowest priority, so a rule says only what it sees, not what
-- outranks it; the last rule, healthy, fires on every run. Confidence is high when an
-- instrumented signal (sigma_max, prediction spread, non-finite values) decides, medium on
-- the shape of the loss curves, low on hyper-parameters and flat curves alone, and on a
-- healthy verdict the log could not back (no baseline, still at chance). It is measured:
-- tests/test_corpus.py holds `high` to 95 % precision at every logging shape. Thresholds
-- are read by name from the thresholds view. To add a rule: a CTE here, its line in final,
-- and an entry in the fixes view if its label is new.
-- CTEs in one view, not a view per rule: DuckDB plans and runs every reference to a view in
-- full, so ten rule views over run_signals computed run_features ten times (measured:
-- `rnnsweep diagnose` 8x slower); these CTEs share one.
create or replace view rule_hits as
with signals as (
    select * from run_signals
),
threshold_values as (
    pivot (select name, value from thresholds)
    on name in (
        'diverge_give_back', 'diverge_min_rise', 'diverge_explode', 'diverge_jump', 'diverge_jump_give_back',
        'diverge_above_chance', 'diverge_score_lost', 'overfit_val_rise', 'overfit_give_back', 'overfit_memorised', 'overfit_give_back_memorised',
        'overfit_train_fit', 'overfit_train_slack', 'overfit_acc_drop', 'collapse_sigma',
        'collapse_weight_shrink', 'l2_strong', 'chance_margin', 'flat_loss', 'constant_pred_ratio'
    )
    using any_value(value)
),
inputs as (
    select signals.*, threshold_values.*
    from signals, threshold_values
),

-- 10 diverged: a loss, score or gradient went NaN/Inf (seed 001's exploding gradients)
diverged_nonfinite as (
    select
        run_id,
        'diverged' as label,
        10 as priority,
        'high' as confidence,
        nonfinite_step as onset_step,
        nonfinite_metric as metric,
        null::double as value,
        null::double as threshold,
        printf('%s became NaN/Inf at step %d', nonfinite_metric, nonfinite_step) as evidence
    from inputs
    where nonfinite_step is not null
),

-- 20 diverged: the early stop ended the trial for divergence (training.early_stop logged
-- early_stopped; its stop reason names no other pathology), at the step it stopped
diverged_early_stop as (
    select
        run_id,
        'diverged' as label,
        20 as priority,
        'high' as confidence,
        early_stop_step as onset_step,
        'train_loss' as metric,
        train_loss_final as value,
        null::double as threshold,
        concat_ws('; ',
            printf('stopped early at step %d (training.early_stop), %s', early_stop_step,
                coalesce(early_stop_reason, 'its training loss diverged')),
            printf('train loss best %.3g (step %d), %.3g over the last 20%% of the run',
                train_loss_best, train_loss_best_step, train_loss_final)) as evidence
    from inputs
    where early_stop_step is not null
      and coalesce(split_part(early_stop_reason, ':', 1), '') not in ('l2_collapsed', 'constant_output')
),

-- 21 l2_collapsed or constant_output: training.early_stop = "pathology" ended the trial, its
-- stop reason naming the label first ("l2_collapsed: sigma_max(W_hh) 0.42 < 1 and falling ...")
pathology_early_stop as (
    select
        run_id,
        split_part(early_stop_reason, ':', 1) as label,
        21 as priority,
        'high' as confidence,
        early_stop_step as onset_step,
        case split_part(early_stop_reason, ':', 1) when 'l2_collapsed' then 'sigma_max_hh' else 'pred_std' end
            as metric,
        null::double as value,
        null::double as threshold,
        printf('stopped early at step %d (training.early_stop = "pathology"), %s', early_stop_step,
            early_stop_reason) as evidence
    from inputs
    where early_stop_step is not null
      and split_part(early_stop_reason, ':', 1) in ('l2_collapsed', 'constant_output')
),

-- 30 l2_collapsed (seed 000): sigma_max(W_hh) ended below collapse_sigma and below where it
-- started, and the run did not learn or ran under strong L2: below 1 memory fades
-- geometrically (Pascanu, Mikolov & Bengio 2013). Without sigma: the weight norm shrank below
-- collapse_weight_shrink of its start and the run did not learn. Gated as AUTOTRAINER gates its
-- gradient rules: healthy runs grow a small W_hh, and are not flagged. Onset: the first window
-- below collapse_sigma, else the best training loss.
l2_collapsed_weights as (
    select
        run_id,
        'l2_collapsed' as label,
        30 as priority,
        'high' as confidence,
        coalesce(
            list_min(list_transform(list_filter(sigma_series, lambda w: w.value < collapse_sigma), lambda w: w.step)),
            train_loss_best_step) as onset_step,
        case when sigma_last is not null then 'sigma_max_hh' else 'weight_norm' end as metric,
        coalesce(sigma_last, weight_norm_last) as value,
        coalesce(case when sigma_last is not null then collapse_sigma end, collapse_weight_shrink * weight_norm_first) as threshold,
        concat_ws('; ',
            case when sigma_last is not null
                then printf('sigma_max(W_hh) fell from %.3g to %.3g, below %g: memory fades geometrically', sigma_first, sigma_last, collapse_sigma)
                else printf('weight norm shrank from %.3g to %.3g', weight_norm_first, weight_norm_last) end,
            case when weight_decay > 0 then printf('weight_decay %g', weight_decay) end,
            coalesce(score_text, printf('best val_loss %.3g vs %.3g at the start', val_loss_best, val_loss_first)) || ': not learning') as evidence
    from inputs
    where ((not_learning or weight_decay >= l2_strong) and sigma_last < collapse_sigma and sigma_last < sigma_first)
        or (not_learning and sigma_last is null and weight_norm_last < collapse_weight_shrink * weight_norm_first)
),

-- 40 l2_collapsed: the run did not learn under strong L2 (weight_decay >= l2_strong) and its
-- predictions are flat, or not logged: L2 on the other weights silenced the output layer
-- (seed 000 with weight_decay_on = "non_recurrent", and loss-only logs). Medium confidence
-- when the prediction spread backs it, low on hyper-parameters alone.
l2_collapsed_params as (
    select
        run_id,
        'l2_collapsed' as label,
        40 as priority,
        case when pred_std_last is not null then 'medium' else 'low' end as confidence,
        train_loss_best_step as onset_step,
        'weight_decay' as metric,
        weight_decay as value,
        l2_strong as threshold,
        concat_ws('; ',
            printf('weight_decay %g >= %g', weight_decay, l2_strong)
                || case when weight_decay_on = 'non_recurrent' then ' on the input and output weights' else '' end,
            case when pred_std_last is not null
                then printf('predictions are flat (std %.3g < %.3g)', pred_std_last, pred_std_floor)
                    || case when sigma_last is not null then printf(' though sigma_max(W_hh) is %.3g: L2 silenced the output layer', sigma_last) else '' end
            end,
            coalesce(score_text, printf('best val_loss %.3g vs %.3g at the start', val_loss_best, val_loss_first)) || ': not learning') as evidence
    from inputs
    where not_learning and weight_decay >= l2_strong and coalesce(pred_std_last < pred_std_floor, true)
),

-- 50 diverged (seed 002: loss falls, then rises and stays): even the lowest of the training
-- loss's final windows gave back diverge_give_back of what it had learned and sits
-- diverge_min_rise above its best, over at least two final windows (10+ evaluations), so one
-- spike never decides. Onset: the best training loss.
diverged_gave_back as (
    select
        run_id,
        'diverged' as label,
        50 as priority,
        'medium' as confidence,
        train_loss_best_step as onset_step,
        'train_loss' as metric,
        train_loss_final as value,
        (1 + diverge_min_rise) * train_loss_best as threshold,
        printf(
            'train loss rose from its best %.3g (step %d) to %.3g over the last 20%% of training, giving back %.0f%% of what it had learned (>= %.0f%%)',
            train_loss_best, train_loss_best_step, train_loss_final,
            100 * (train_loss_final - train_loss_best) / greatest(train_loss_first - train_loss_best, 1e-12),
            100 * diverge_give_back) as evidence
    from inputs
    where train_loss_final_windows >= 2
        and train_loss_final_floor - train_loss_best >= diverge_give_back * (train_loss_first - train_loss_best)
        and train_loss_final_floor >= (1 + diverge_min_rise) * train_loss_best
),

-- 55 diverged, a late jump (seed 002's symptom at the very end of a run: the quickstart's LSTM
-- at lr 0.03, 0.20 by epoch 7, 0.73 in epoch 8): the training loss's tail (its last two
-- windows, or the last alone when it holds one logged point, an epoch-level log's last epoch)
-- is diverge_jump times its best and gave back diverge_jump_give_back of what it had learned,
-- however late; both windows must be up, so one spike never decides, and the validation loss,
-- where logged, ended diverge_min_rise above its best too (a jump it does not share is the
-- noise of small batches). Onset: the best training loss.
diverged_late_jump as (
    select
        run_id,
        'diverged' as label,
        55 as priority,
        'medium' as confidence,
        train_loss_best_step as onset_step,
        'train_loss' as metric,
        train_loss_tail_floor as value,
        diverge_jump * train_loss_best as threshold,
        printf('train loss jumped from its best %.3g (step %d) to %.3g at the end of training, %.2gx (>= %gx), giving back %.0f%% of what it had learned',
            train_loss_best, train_loss_best_step, train_loss_tail_floor, train_loss_tail_floor / train_loss_best,
            diverge_jump, 100 * (train_loss_tail_floor - train_loss_best) / greatest(train_loss_first - train_loss_best, 1e-12)) as evidence
    from inputs
    where train_loss_tail_floor >= diverge_jump * train_loss_best
        and train_loss_tail_floor - train_loss_best >= diverge_jump_give_back * (train_loss_first - train_loss_best)
        and coalesce(val_loss_last >= (1 + diverge_min_rise) * val_loss_best, true)
),

-- 57 diverged, learned then lost it (seed 002: accuracy drops; the quickstart's LSTM at lr
-- 0.03): the validation score got diverge_score_lost above chance, its final 20 % is back
-- within chance_margin of chance, and the training loss ended diverge_min_rise above its
-- best. Overfitting keeps its training loss low and is not this. Onset: the best score.
diverged_lost_score as (
    select
        run_id,
        'diverged' as label,
        57 as priority,
        'medium' as confidence,
        coalesce(val_acc_best_step, train_loss_best_step) as onset_step,
        score_name as metric,
        score_final as value,
        chance_score + chance_margin as threshold,
        printf('%s reached %.3g (chance %.3g) and fell back to %.3g; train loss rose from its best %.3g (step %d) to %.3g',
            score_name, score_best, chance_score, score_final, train_loss_best, train_loss_best_step, train_loss_final) as evidence
    from (select *, coalesce(val_acc_final, val_r2_final) as score_final from inputs)
    where score_best >= chance_score + diverge_score_lost
        and score_final <= chance_score + chance_margin
        and train_loss_final >= (1 + diverge_min_rise) * train_loss_best
),

-- 60 diverged: the final training loss is diverge_explode times where it started (its first
-- window, or the untrained model's validation loss when lower): it blew up past the start.
-- The validation loss, where logged, ended diverge_min_rise above its best too: a blow-up it
-- does not share is the noise of small batches (holdout2's h2-healthy-11, batch 6, without a
-- baseline: epoch-mean train loss 0.10 against a first validation loss of 0.021, its
-- validation loss at its best at the end). Onset: the best training loss.
diverged_exploded as (
    select
        run_id,
        'diverged' as label,
        60 as priority,
        'medium' as confidence,
        train_loss_best_step as onset_step,
        'train_loss' as metric,
        train_loss_final as value,
        diverge_explode * start_loss as threshold,
        printf('train loss ended at %.3g, %.2gx the %.3g it started from (>= %gx)',
            train_loss_final, train_loss_final / start_loss, start_loss, diverge_explode) as evidence
    from (
        select *, least(train_loss_first, coalesce(val_loss_first, train_loss_first)) as start_loss
        from inputs
    )
    where train_loss_final >= diverge_explode * start_loss
        and coalesce(val_loss_last >= (1 + diverge_min_rise) * val_loss_best, true)
),

-- 65 diverged at the start: the training loss's first window is diverge_explode times the
-- untrained model's validation loss (an early jump) and the run never learned after: the first
-- steps blew the weights up, and what is left predicts one value, so the spread rule below
-- would say constant_output; the cause is the step size (holdout2's regressions at RMSprop lr 0.2
-- and Adam lr 0.6). Needs the untrained evaluation. Onset: the first training window.
diverged_at_start as (
    select
        run_id,
        'diverged' as label,
        65 as priority,
        'medium' as confidence,
        train_loss_first_step as onset_step,
        'train_loss' as metric,
        train_loss_first as value,
        diverge_explode * val_loss_first as threshold,
        concat_ws('; ',
            printf('the train loss jumped to %.2gx the untrained model''s %.3g in its first steps (>= %gx)',
                train_loss_first / val_loss_first, val_loss_first, diverge_explode),
            coalesce(score_text, printf('best val_loss %.3g', val_loss_best)) || ': it never learned after',
            case when pred_std_last < pred_std_floor
                then printf('its predictions are flat (std %.3g < %.3g): the same output for every input', pred_std_last, pred_std_floor)
            end) as evidence
    from inputs
    where early_jump and not_learning
),

-- 67 diverged, never as good as chance: even the best loss is diverge_above_chance times the
-- chance loss (ln C, the targets' variance). A network that learned nothing sits near chance
-- (constant_output, l2_collapsed); far above it, its predictions are confidently wrong: the step
-- size blew it up, and an epoch-level log that starts after the blow-up shows only the wreck
-- (holdout3's SGD at lr 50 on the events, best loss 104 against 0.69). Needs a chance level.
-- Onset: the first training window.
diverged_above_chance as (
    select
        run_id,
        'diverged' as label,
        67 as priority,
        'medium' as confidence,
        train_loss_first_step as onset_step,
        coalesce(case when val_loss_best is not null then 'val_loss' end, 'train_loss') as metric,
        loss_best as value,
        diverge_above_chance * chance_loss as threshold,
        printf('the best loss %.3g is %.3gx the %.3g of predicting nothing about the input (>= %gx): confidently wrong predictions, the weights blew up',
            loss_best, loss_best / chance_loss, chance_loss, diverge_above_chance) as evidence
    from inputs
    where chance_loss > 0 and loss_best >= diverge_above_chance * chance_loss
),

-- 70 constant_output (the same output for every input, seed 001's symptom): the prediction std across
-- inputs ended below pred_std_floor (TheDeepChecker: output variance zero), and the training
-- loss stopped falling. Onset: the first window of the final flat stretch, after the last
-- window where predictions still varied.
constant_output_spread as (
    select
        run_id,
        'constant_output' as label,
        70 as priority,
        'high' as confidence,
        list_min(list_transform(
            list_filter(pred_std_series, lambda w: w.value < pred_std_floor and w.step > coalesce(last_varied_step, -1)),
            lambda w: w.step)) as onset_step,
        'pred_std' as metric,
        pred_std_last as value,
        pred_std_floor as threshold,
        concat_ws('; ',
            printf('prediction std across inputs %.3g < %.3g', pred_std_last, pred_std_floor)
                || case when target_std > 0 then printf(' (%g of the targets'' std %.3g)', constant_pred_ratio, target_std) else '' end
                || ': the same output for every input',
            case when sigma_last is not null then printf('weights are normal-sized (sigma_max(W_hh) %.3g)', sigma_last) end) as evidence
    from (
        select *, list_max(list_transform(list_filter(pred_std_series, lambda w: w.value >= pred_std_floor), lambda w: w.step)) as last_varied_step
        from inputs
    )
    where pred_std_last < pred_std_floor
        and not slow_learner  -- its loss still falls: not yet (as rule 100)
),

-- 80 overfitting: validation loss got worse by a margin that matters against what it had
-- gained (or it never gained): its final windows' floor is overfit_val_rise above its best and
-- gave back overfit_give_back of its gain, over at least two final windows, while training fit
-- its data (down to overfit_train_fit of its first) and kept most of that fit (gave back at
-- most overfit_train_slack). The gain is counted from the untrained evaluation; a log without
-- one starts after training began, so it is counted from the chance loss where that is higher
-- than the first logged point: a plateau reached in epoch 1 then wobbling up from 0.001 to
-- 0.02 gave back 3 % of what it learned, not all of the little left after epoch 1. A run
-- that learned its training set by heart (train loss down to overfit_memorised of its first)
-- need give back only overfit_give_back_memorised: learning a lot first, then losing a tenth
-- of it while the training loss goes to zero is the textbook overfit (holdout, holdout2: val
-- loss up 1.8-1.9x from its best, 15-18 % of the gain given back, train loss at 0.1-0.2 %).
-- Onset: the best validation loss.
overfitting_loss as (
    select
        run_id,
        'overfitting' as label,
        80 as priority,
        'medium' as confidence,
        val_loss_best_step as onset_step,
        'val_loss' as metric,
        val_loss_final as value,
        (1 + overfit_val_rise) * val_loss_best as threshold,
        printf('validation loss rose from its best %.3g (step %d) to %.3g (+%.0f%%, > %.0f%%) while train loss held at %.3g',
            val_loss_best, val_loss_best_step, val_loss_final, 100 * (val_loss_final / val_loss_best - 1),
            100 * overfit_val_rise, train_loss_final)
            || case when memorised then printf(', %.2g%% of its first: the training set learned by heart', 100 * train_loss_final / train_loss_first) else '' end
            as evidence
    from (
        select
            *,
            case when has_baseline then val_loss_first else greatest(val_loss_first, chance_loss) end as val_loss_start,
            train_loss_final <= overfit_memorised * train_loss_first as memorised
        from inputs
    )
    where val_loss_final_windows >= 2
        and val_loss_final_floor >= (1 + overfit_val_rise) * val_loss_best
        and val_loss_final_floor - val_loss_best
            >= case when memorised then overfit_give_back_memorised else overfit_give_back end * (val_loss_start - val_loss_best)
        and coalesce(
            train_loss_final <= overfit_train_fit * train_loss_first
                and train_loss_final - train_loss_best <= overfit_train_slack * (train_loss_first - train_loss_best),
            true)
),

-- 90 overfitting, accuracy-only logs (no validation loss): validation accuracy fell
-- overfit_acc_drop below its best while train accuracy held. Onset: the best validation accuracy.
overfitting_acc as (
    select
        run_id,
        'overfitting' as label,
        90 as priority,
        'medium' as confidence,
        val_acc_best_step as onset_step,
        'val_acc' as metric,
        val_acc_final as value,
        val_acc_best - overfit_acc_drop as threshold,
        printf('validation accuracy fell from its best %.3g (step %d) to %.3g while train accuracy held at %.3g',
            val_acc_best, val_acc_best_step, val_acc_final, train_acc_final) as evidence
    from inputs
    where val_loss_best is null
        and val_acc_best - val_acc_final >= overfit_acc_drop
        and train_acc_final >= train_acc_best - overfit_acc_drop
),

-- 100 constant_output: nothing about the input was learned, and no strong L2 to blame (30-40
-- take those runs): the score is at chance and, for accuracy, the loss stayed at chance too
-- (ln C, or the untrained model's; R2 already measures the loss against predicting the mean,
-- so R2 at chance is enough), and the training loss stopped falling: a slow learner still at
-- chance whose loss falls is not this (healthy, low confidence: not above chance yet). Medium
-- confidence with a score, low on a flat loss alone. Onset: the best training loss.
constant_output_flat as (
    select
        run_id,
        'constant_output' as label,
        100 as priority,
        case when score_best is not null then 'medium' else 'low' end as confidence,
        train_loss_best_step as onset_step,
        coalesce(score_name, 'val_loss') as metric,
        coalesce(score_best, val_loss_best) as value,
        coalesce(chance_score + chance_margin, flat_loss * coalesce(chance_loss, val_loss_first)) as threshold,
        concat_ws('; ',
            score_text,
            case
                when chance_loss is not null then printf('best loss %.3g vs %.3g at chance', loss_best, chance_loss)
                else printf('best val_loss %.3g vs %.3g at the start', val_loss_best, val_loss_first)
            end)
            || ': the output carries nothing about the input, and no strong L2 to blame' as evidence
    from inputs
    where not_learning
        and ((val_acc_best is null and val_r2_best is not null) or coalesce(loss_flat, true))
        and not coalesce(loss_still_falling, false)
),

-- 1000 healthy: none of the above, noisy curves and early plateaus included. Its confidence
-- says how much there was to judge by: low when learning could not be judged (no baseline and
-- no chance level: see run_signals), when the run is still at chance (not above chance yet: a
-- slow learner, or too little to go on), when its predictions barely vary yet while its loss
-- still falls (a slow learner the spread rule left alone), or without a training loss; high when sigma_max or
-- the prediction spread was logged too and the run ended near its best, no rule close to
-- firing (validation loss within overfit_val_rise of its best, score within overfit_acc_drop,
-- training loss within diverge_min_rise); medium otherwise.
healthy as (
    select
        run_id,
        'healthy' as label,
        1000 as priority,
        case
            when train_loss_first is null or not_learning is null or not_learning or slow_learner then 'low'
            when (sigma_last is not null or pred_std_last is not null)
                and coalesce(val_loss_final <= (1 + overfit_val_rise) * val_loss_best, true)
                and coalesce(coalesce(val_acc_final, val_r2_final) >= score_best - overfit_acc_drop, true)
                and train_loss_final <= (1 + diverge_min_rise) * train_loss_best then 'high'
            else 'medium'
        end as confidence,
        null::bigint as onset_step,
        null::varchar as metric,
        null::double as value,
        null::double as threshold,
        concat_ws('; ',
            case
                when not_learning is null then
                    case
                        when has_baseline then 'no chance level: its fall from the untrained loss cannot tell "learned the targets'' mean" from "learned the task"; '
                        else printf('no baseline: the log starts at step %d, after training began, and no chance level is known, so a flat loss cannot tell "did not learn" from "learned early"; ',
                            least(eval_first_step, train_loss_first_step))
                    end
                    || case when task_kind = 'regression' then 'log val_r2, or give target_std in the params, to judge it' else 'give n_classes, or log val_acc, to judge it' end
                    || case when weight_decay >= l2_strong then printf(' (weight_decay %g >= %g: if it did not learn, suspect L2)', weight_decay, l2_strong) else '' end
                when not_learning then 'not above chance yet: raise lr or train longer'
                when slow_learner then printf('predictions barely vary yet (std %.3g < %.3g) but the loss still falls: a slow learner, raise lr or train longer', pred_std_last, pred_std_floor)
            end,
            case when val_loss_best is not null then printf('best val_loss %.3g at step %d', val_loss_best, val_loss_best_step) end,
            score_text,
            'no rule fired') as evidence
    from inputs
),

final as (
    select * from diverged_nonfinite
    union all by name select * from diverged_early_stop
    union all by name select * from pathology_early_stop
    union all by name select * from l2_collapsed_weights
    union all by name select * from l2_collapsed_params
    union all by name select * from diverged_gave_back
    union all by name select * from diverged_late_jump
    union all by name select * from diverged_lost_score
    union all by name select * from diverged_exploded
    union all by name select * from diverged_at_start
    union all by name select * from diverged_above_chance
    union all by name select * from constant_output_spread
    union all by name select * from overfitting_loss
    union all by name select * from overfitting_acc
    union all by name select * from constant_output_flat
    union all by name select * from healthy
)
select * from final;
