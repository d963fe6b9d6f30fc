-- fixes
-- grain: one row per run and label (run_id, label)
-- Fixes: for every run, the concrete change that answers each label, written against the
-- run's own hyper-parameters (lower optimizer.lr 0.01 -> 0.001, shrink weight_decay 0.1 ->
-- 0.01, stop at the best validation step) so `rnnsweep fix` can turn it into a follow-up
-- trial. The diagnosis joins the row of the label it chose; healthy has none. A rule that
-- reuses a label needs nothing here; a new label adds one entry to the list below.
create or replace view fixes as
with signals as (
    select * from run_signals
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
                case when nonfinite_step is null and coalesce(lr_schedule, 'constant') = 'constant' then 'or decay the lr (training.lr_schedule = "cosine")' end)},
            {'label': 'l2_collapsed', 'fix': concat_ws('; ',
                case when coalesce(weight_decay_on, 'all') = 'all' then 'stop decaying the recurrent weights (optimizer.weight_decay_on = "non_recurrent")' end,
                case when weight_decay > 0 then printf('shrink optimizer.weight_decay %g -> %g', weight_decay, weight_decay / 10) end,
                'or regularise with dropout instead (model.dropout, with model.layers >= 2)')},
            {'label': 'constant_output', 'fix': concat_ws('; ',
                case when early_jump and lr is not null then printf('the loss jumped first: lower optimizer.lr %g -> %g and clip gradients (training.clip_grad_norm = 1.0)', lr, lr / 10) end,
                'the output ignores the input: check inputs for NaN, zeroed or constant features, and normalise them',
                'check the labels (shuffled? one class? training.pos_weight for rare positives)',
                case when lr is not null and not coalesce(early_jump, false) then printf('if it followed a loss jump, lower optimizer.lr %g -> %g and clip gradients', lr, lr / 10) end)},
            -- the best validation step: the validation loss's, else (accuracy-only logs) the accuracy's
            {'label': 'overfitting', 'fix': concat_ws('; ',
                printf('stop at step %d, the best validation loss', coalesce(val_loss_best_step, val_acc_best_step)),
                'add dropout (model.dropout, model.layers >= 2) or L2 on non-recurrent weights (optimizer.weight_decay_on = "non_recurrent")',
                'or train on more data')}
        ], recursive := true)
    from signals
)
select * from final;
