-- run_params
-- grain: one row per run (run_id)
-- Staging: every hyper-parameter of a run as its own typed column, read from the resolved
-- config stored in runs.config (staging_runs), so a grid can be sliced with plain SQL
-- (`group by cell, lr, weight_decay`). Column names are the grid keys, except
-- sweep.seeds -> seed, data.seed -> data_seed, data.path -> data_path,
-- optimizer.name -> optimizer. Imported runs (`rnnsweep import`) keep their params flat
-- ({"lr": ..., "weight_decay": ..., "task": "classification"}), so the common ones are
-- read from either shape. task_kind (classification | regression) and n_classes give the
-- diagnosis its chance level, and target_std (the targets' spread, which an import may give)
-- a regression's. A run of your own training loop (sweep.entrypoint, or a Run in
-- a plain script) keeps its hyper-parameters flat in its [params], read like an import's:
-- the built-in sections it carries are defaults it never read. factory, args (the model
-- factory's keyword arguments, JSON), entrypoint, code and params (JSON) say whose code ran.
-- fixes: the run_id of the run this one follows up (a `rnnsweep fix` trial), else null.
-- Every value is read with try_cast, whole numbers as bigint: a value a column cannot hold
-- (a seed of 2**32, `seed = "random"` in an imported params file) is null in that run's row,
-- never an error that stops every query over the view.
create or replace view run_params as
with staged as (
    select * from staging_runs
),
source as (
    select
        * replace (
            case when coalesce(config ->> '$.entrypoint', '') = '' then config else config -> '$.params' end as config
        ),
        config as stored
    from staged
),
final as (
    select
        run_id,
        sweep,
        trial_index,
        status,
        config ->> '$.task' as task,
        case
            when config ->> '$.task' in ('events', 'sequences4', 'classification') then 'classification'
            when config ->> '$.task' in ('word_vectors', 'regression') then 'regression'
        end as task_kind,
        coalesce(
            case config ->> '$.task' when 'events' then 2 when 'sequences4' then 4 end,
            try_cast(config ->> '$.n_classes' as bigint)
        ) as n_classes,
        try_cast(config ->> '$.target_std' as double) as target_std,
        try_cast(config ->> '$.seed' as bigint) as seed,
        try_cast(config ->> '$.epochs' as bigint) as epochs,
        try_cast(config ->> '$.evals_per_epoch' as bigint) as evals_per_epoch,
        try_cast(config ->> '$.data.seed' as bigint) as data_seed,
        try_cast(coalesce(config ->> '$.data.n_train', config ->> '$.n_train') as bigint) as n_train,
        try_cast(config ->> '$.data.n_val' as bigint) as n_val,
        try_cast(config ->> '$.data.seq_len' as bigint) as seq_len,
        try_cast(config ->> '$.data.n_features' as bigint) as n_features,
        try_cast(config ->> '$.data.positive_rate' as double) as positive_rate,
        try_cast(config ->> '$.data.noise' as double) as noise,
        try_cast(config ->> '$.data.target_dim' as bigint) as target_dim,
        config ->> '$.data.path' as data_path,
        nullif(stored ->> '$.data_digest', '') as data_digest,
        try_cast(config ->> '$.data.val_fraction' as double) as val_fraction,
        coalesce(config ->> '$.model.cell', config ->> '$.cell') as cell,
        try_cast(coalesce(config ->> '$.model.hidden', config ->> '$.hidden') as bigint) as hidden,
        try_cast(config ->> '$.model.layers' as bigint) as layers,
        try_cast(config ->> '$.model.bidirectional' as boolean) as bidirectional,
        try_cast(config ->> '$.model.dropout' as double) as dropout,
        coalesce(config ->> '$.optimizer.name', config ->> '$.optimizer') as optimizer,
        try_cast(coalesce(config ->> '$.optimizer.lr', config ->> '$.lr') as double) as lr,
        try_cast(config -> '$.optimizer.betas' as double[]) as betas,
        try_cast(coalesce(config ->> '$.optimizer.betas[0]', config ->> '$.beta1') as double) as beta1,
        try_cast(coalesce(config ->> '$.optimizer.betas[1]', config ->> '$.beta2') as double) as beta2,
        try_cast(config ->> '$.optimizer.momentum' as double) as momentum,
        try_cast(coalesce(config ->> '$.optimizer.weight_decay', config ->> '$.weight_decay') as double) as weight_decay,
        config ->> '$.optimizer.weight_decay_on' as weight_decay_on,
        try_cast(coalesce(config ->> '$.training.batch_size', config ->> '$.batch_size') as bigint) as batch_size,
        try_cast(coalesce(config ->> '$.training.clip_grad_norm', config ->> '$.clip_grad_norm') as double) as clip_grad_norm,
        config ->> '$.training.lr_schedule' as lr_schedule,
        try_cast(config ->> '$.training.lr_step_epochs' as bigint) as lr_step_epochs,
        try_cast(config ->> '$.training.lr_gamma' as double) as lr_gamma,
        try_cast(config ->> '$.training.pos_weight' as double) as pos_weight,
        config ->> '$.training.early_stop' as early_stop,
        try_cast(config ->> '$.resources.cpus_per_trial' as double) as cpus_per_trial,
        try_cast(config ->> '$.resources.gpus_per_trial' as double) as gpus_per_trial,
        try_cast(config ->> '$.resources.max_retries' as bigint) as max_retries,
        try_cast(config ->> '$.resources.pack_size' as bigint) as pack_size,
        nullif(stored ->> '$.model.factory', '') as factory,
        stored -> '$.model.args' as args,
        nullif(stored ->> '$.entrypoint', '') as entrypoint,
        nullif(stored ->> '$.code', '') as code,
        stored -> '$.params' as params,
        nullif(stored ->> '$.fixes', '') as fixes
    from source
)
select * from final;
