-- thresholds
-- grain: one row per threshold (name)
-- Every number the diagnosis rules compare against, in one place, with what it means.
-- A threshold's value is, first found: the query's own override (`rnnsweep diagnose --set
-- NAME=VALUE`, which sets the variable rnnsweep_thresholds, a map of name to value), the
-- warehouse's override (`rnnsweep thresholds --set NAME=VALUE`, table threshold_overrides),
-- the default below. Curves are judged in 20 equal step windows: "first" is the first
-- window's mean, "best" the best window's, "final" the mean of the last 20 %, so one noisy
-- step never decides a label.
create or replace view thresholds as
with defaults as (
    select * from (values
        ('diverge_give_back', 0.5,
         'diverged: the final train loss gave back at least this fraction of what it had learned, (final - best) / (first - best) (seed 002: loss falls, then rises and stays)'),
        ('diverge_min_rise', 0.25,
         'diverged: ... and ends at least this much above its best, relative, so a flat curve''s wiggles never count'),
        ('diverge_explode', 2.0,
         'diverged: or the final train loss is this many times its first window, or the untrained model''s validation loss (blew up past the start)'),
        ('diverge_jump', 2.0,
         'diverged, a late jump: the training loss''s tail (its last two windows, or the last alone when it holds one logged point, an epoch''s mean) is at least this many times its best, however late (the quickstart: 0.20 at epoch 7, 0.73 in epoch 8)'),
        ('diverge_jump_give_back', 0.15,
         'diverged, a late jump: ... and gave back at least this fraction of what it had learned, (tail - best) / (first - best), so a near-zero loss doubling is no jump; the validation loss, where logged, must end diverge_min_rise above its best too (a jump it does not share is small-batch noise)'),
        ('diverge_above_chance', 5.0,
         'diverged, never as good as chance: the best loss is at least this many times the chance loss (ln C; the targets'' variance): predictions confidently wrong, not merely uninformed (a network stuck on one output sits near chance: 1.2-1.6x with the corpora''s weighted BCE)'),
        ('diverge_score_lost', 0.15,
         'diverged, learned then lost it: the best validation score was at least this above chance, the final one is back within chance_margin of it, and the training loss ended diverge_min_rise above its best'),
        ('overfit_val_rise', 0.15,
         'overfitting: the final validation loss is this much above its best, relative (SageMaker Debugger Overfit uses a 10 % train/val gap)'),
        ('overfit_give_back', 0.25,
         'overfitting: ... and gave back at least this fraction of what validation had gained, (final - best) / (first - best), so a near-zero loss wobbling never counts'),
        ('overfit_memorised', 0.01,
         'overfitting, memorised: when the training loss ended below this fraction of its first value (the training set learned by heart) ...'),
        ('overfit_give_back_memorised', 0.1,
         'overfitting, memorised: ... the validation loss need give back only this fraction of its gain (a model that learned a lot first, then lost a tenth of it while memorising, overfits)'),
        ('overfit_train_fit', 0.5,
         'overfitting: ... while the training loss fell to at most this fraction of its first value (the model did fit its training data)'),
        ('overfit_train_slack', 0.3,
         'overfitting: ... and gave back at most this fraction of its own gain (training still fine)'),
        ('overfit_acc_drop', 0.05,
         'overfitting, accuracy-only logs: validation accuracy fell this much below its best while train accuracy held'),
        ('collapse_sigma', 1.0,
         'l2_collapsed: largest singular value of W_hh below this at the end; below 1 memory fades geometrically (Pascanu, Mikolov & Bengio 2013)'),
        ('collapse_weight_shrink', 0.5,
         'l2_collapsed: or the weight norm ended below this fraction of its start (when no sigma is logged)'),
        ('l2_strong', 0.01,
         'l2_collapsed, loss-only logs: weight_decay at least this, and the run did not learn'),
        ('chance_margin', 0.05,
         'not learning: the best validation score is within this of chance (balanced acc 0.5, 1/n_classes, R2 0)'),
        ('flat_loss', 0.9,
         'not learning: the best validation loss is at least this fraction of the chance loss (ln C for C classes, the targets'' variance for regression), or of the untrained model''s at step 0 (alone when no score is logged; with the score for constant_output). Without either, a flat loss from a first point after training began says nothing: healthy, low confidence'),
        ('still_falling', 0.05,
         'not above chance yet: a run at chance whose training loss''s final 20 % got at least this much (relative) below its best before is still learning (a slow learner: healthy, low confidence), not constant_output'),
        ('still_falling_pace', 0.1,
         'still learning: ... or its validation loss set a new best at every window (three or more) and fell in its final 20 % by at least this fraction of its whole fall (0.1: half its average pace over the run); a constant output has stopped falling'),
        ('constant_pred_ratio', 0.05,
         'constant_output: prediction std across inputs below this fraction of the targets'' std at the end (TheDeepChecker: output variance zero)'),
        ('constant_pred_abs', 0.005,
         'constant_output: or below this absolute std when the target spread is not logged')
    ) as t(name, default_value, description)
),
warehouse_overrides as (
    select name, value from staging_threshold_overrides
),
final as (
    select
        d.name,
        coalesce(
            try_cast(getvariable('rnnsweep_thresholds')[d.name] as double),
            o.value,
            d.default_value::double
        ) as value,
        d.default_value::double as default_value,
        case
            when getvariable('rnnsweep_thresholds')[d.name] is not null then 'query'
            when o.value is not null then 'warehouse'
            else 'default'
        end as source,
        d.description
    from defaults d
    left join warehouse_overrides o using (name)
)
select * from final;
