-- fixes
-- grain: one row per run and label (run_id, label)
-- Fixes: for every run, the concrete change that answers each label, written against the
-- run's own hyper-parameters (lower optimizer.lr 0.01 -> 0.001, shrink weight_decay 0.1 ->
-- 0.01, stop at the best validation step) so `rnnsweep fix` can turn it into a follow-up
-- trial. The diagnosis joins the row of the label it chose; healthy has none. A rule that
-- reuses a label needs nothing here; a new label adds one entry to the list below.
-- Beside the text, the same advice machine-readable, so `rnnsweep fix` never parses English:
-- `changes` (JSON) lists the follow-up trials, each a list of {key, value} grid changes applied
-- together (a second trial is the text's "or ..." alternative); `manual` (JSON) lists the
-- advice no grid key can carry, each {advice, why}. Numbers are the ones the text prints (%g).
create or replace view fixes as
with signals as (
    select * from run_signals
),
changes as (
    select
        run_id,
        -- lower the lr 10x, as the text prints it
        case when lr is not null then {'key': 'optimizer.lr', 'value': to_json(printf('%g', lr / 10)::double)} end as lower_lr,
        case when coalesce(clip_grad_norm, 0) = 0 then {'key': 'training.clip_grad_norm', 'value': to_json(1.0)} end as clip,
        case when optimizer = 'adam' and beta1 < 0.9 then {'key': 'optimizer.betas', 'value': to_json([0.9, 0.999])} end as betas,
        case when nonfinite_step is null and coalesce(lr_schedule, 'constant') = 'constant'
            then {'key': 'training.lr_schedule', 'value': to_json('cosine')} end as cosine,
        case when coalesce(weight_decay_on, 'all') = 'all'
            then {'key': 'optimizer.weight_decay_on', 'value': to_json('non_recurrent')} end as spare_w_hh,
        case when weight_decay > 0
            then {'key': 'optimizer.weight_decay', 'value': to_json(printf('%g', weight_decay / 10)::double)} end as shrink_l2
    from signals
),
-- one follow-up trial: its changes, none missing (a trial with no change is no trial)
trials as (
    select
        run_id,
        list_filter([lower_lr, betas, clip], lambda c: c is not null) as diverged_lower,
        case when cosine is not null then list_filter([cosine, betas, clip], lambda c: c is not null) end as diverged_decay,
        list_filter([spare_w_hh, shrink_l2], lambda c: c is not null) as l2_spare,
        list_filter([lower_lr, clip], lambda c: c is not null) as constant_lower
    from changes
),
inputs as (
    select signals.*, trials.* exclude (run_id)
    from signals join trials using (run_id)
),
final as (
    select
        run_id,
        unnest([
            -- the input check goes to a run that went NaN/Inf (the nonfinite rule outranks the other diverged ones)
            {'label': 'diverged', 'fix': concat_ws('; ',
                case when nonfinite_step is not null then 'check the inputs for NaN/Inf and normalise them (zero mean, unit variance)' end,
                case when lr is not null then printf('lower optimizer.lr %g -> %g', lr, lr / 10) else 'lower the learning rate 10x' end,
                case when optimizer = 'adam' and beta1 < 0.9 then printf('set optimizer.betas = [0.9, 0.999] (beta1 is %g)', beta1) end,
                case when coalesce(clip_grad_norm, 0) = 0 then 'clip gradients (training.clip_grad_norm = 1.0)' end,
                case when nonfinite_step is null and coalesce(lr_schedule, 'constant') = 'constant' then 'or decay the lr (training.lr_schedule = "cosine")' end),
             'changes': to_json(list_filter([diverged_lower, diverged_decay], lambda t: len(t) > 0)),
             'manual': to_json(list_filter([
                case when nonfinite_step is not null then {'advice': 'check the inputs for NaN/Inf and normalise them',
                    'why': 'a change to the data, not to the grid'} end,
                case when lr is null then {'advice': 'lower the learning rate 10x',
                    'why': 'the run''s config holds no optimizer.lr to lower'} end], lambda m: m is not null))},
            {'label': 'l2_collapsed', 'fix': concat_ws('; ',
                case when coalesce(weight_decay_on, 'all') = 'all' then 'stop decaying the recurrent weights (optimizer.weight_decay_on = "non_recurrent")' end,
                case when weight_decay > 0 then printf('shrink optimizer.weight_decay %g -> %g', weight_decay, weight_decay / 10) end,
                'or regularise with dropout instead (model.dropout, with model.layers >= 2)'),
             'changes': to_json(list_filter([l2_spare], lambda t: len(t) > 0)),
             'manual': to_json([{'advice': 'or regularise with dropout instead',
                'why': 'it names no dropout rate, and model.layers >= 2 is another model: a choice to make by hand'}])},
            {'label': 'constant_output', 'fix': concat_ws('; ',
                case when early_jump and lr is not null then printf('the loss jumped first: lower optimizer.lr %g -> %g and clip gradients (training.clip_grad_norm = 1.0)', lr, lr / 10) end,
                'the output ignores the input: check inputs for NaN, zeroed or constant features, and normalise them',
                'check the labels (shuffled? one class? training.pos_weight for rare positives)',
                case when lr is not null and not coalesce(early_jump, false) then printf('if it followed a loss jump, lower optimizer.lr %g -> %g and clip gradients', lr, lr / 10) end),
             'changes': to_json(list_filter([constant_lower], lambda t: len(t) > 0)),
             'manual': to_json([
                {'advice': 'check inputs for NaN, zeroed or constant features, and normalise them',
                    'why': 'a change to the data, not to the grid'},
                {'advice': 'check the labels', 'why': 'a change to the data, not to the grid'}])},
            -- the best validation step: the validation loss's, else (accuracy-only logs) the accuracy's
            {'label': 'overfitting', 'fix': concat_ws('; ',
                printf('stop at step %d, the best validation loss', coalesce(val_loss_best_step, val_acc_best_step)),
                'add dropout (model.dropout, model.layers >= 2) or L2 on non-recurrent weights (optimizer.weight_decay_on = "non_recurrent")',
                'or train on more data'),
             'changes': to_json([]::json[]),
             'manual': to_json([
                {'advice': printf('stop at step %d', coalesce(val_loss_best_step, val_acc_best_step)),
                    'why': 'not a config change: the run at its best validation step is already the model to keep'},
                {'advice': 'add dropout or L2 on non-recurrent weights, or train on more data',
                    'why': 'it names no rate or amount to set: a choice to make by hand'}])}
        ], recursive := true)
    from inputs
)
select * from final;
