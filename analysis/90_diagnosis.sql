-- diagnosis
-- grain: one row per run (run_id)
-- Diagnosis: one label per run (healthy, overfitting, l2_collapsed, diverged,
-- constant_output), how sure (high, medium, low), the step where the symptom began, the
-- evidence (metric, value, threshold, and a sentence) and a concrete fix: of the rules that
-- fire on a run (rule_hits, where healthy fires on every run) the one with the lowest
-- priority, with its label's fix (the fixes view). Thresholds: see the thresholds view.
-- Measured on tests/corpus (75 real runs with injected faults, and 50 held out) at three
-- logging shapes, per label and per confidence level: see tests/test_corpus.py.
create or replace view diagnosis as
with hits as (
    select * from rule_hits
),
run_sweeps as (
    select run_id, sweep from staging_runs
),
run_fixes as (
    select * from fixes
),
first_hits as (
    select *
    from hits
    qualify row_number() over (partition by run_id order by priority) = 1
),
final as (
    select
        first_hits.run_id,
        run_sweeps.sweep,
        first_hits.label,
        first_hits.confidence,
        first_hits.onset_step,
        first_hits.evidence,
        first_hits.metric,
        first_hits.value,
        first_hits.threshold,
        run_fixes.fix
    from first_hits
    join run_sweeps using (run_id)
    left join run_fixes using (run_id, label)
)
select * from final;
