-- run_params
-- grain: one row per run
-- Staging: every hyper-parameter of a run as its own typed column, read from the resolved
-- config stored in runs.config, so a grid can be sliced with plain SQL
-- (`group by cell, lr, weight_decay`). Column names are the grid keys, except
-- sweep.seeds -> seed, data.seed -> data_seed, data.path -> data_path,
-- optimizer.name -> optimizer.
create or replace view run_params as
with source as (
    select * from runs
),
final as (
    select
        run_id,
        sweep,
        trial_index,
        status,
        config ->> '$.task' as task,
        cast(config ->> '$.seed' as integer) as seed,
        cast(config ->> '$.epochs' as integer) as epochs,
        cast(config ->> '$.evals_per_epoch' as integer) as evals_per_epoch,
        cast(config ->> '$.data.seed' as integer) as data_seed,
        cast(config ->> '$.data.n_train' as integer) as n_train,
        cast(config ->> '$.data.n_val' as integer) as n_val,
        cast(config ->> '$.data.seq_len' as integer) as seq_len,
        cast(config ->> '$.data.n_features' as integer) as n_features,
        cast(config ->> '$.data.positive_rate' as double) as positive_rate,
        cast(config ->> '$.data.noise' as double) as noise,
        cast(config ->> '$.data.target_dim' as integer) as target_dim,
        config ->> '$.data.path' as data_path,
        cast(config ->> '$.data.val_fraction' as double) as val_fraction,
        config ->> '$.model.cell' as cell,
        cast(config ->> '$.model.hidden' as integer) as hidden,
        cast(config ->> '$.model.layers' as integer) as layers,
        cast(config ->> '$.model.bidirectional' as boolean) as bidirectional,
        cast(config ->> '$.model.dropout' as double) as dropout,
        config ->> '$.optimizer.name' as optimizer,
        cast(config ->> '$.optimizer.lr' as double) as lr,
        cast(config -> '$.optimizer.betas' as double[]) as betas,
        cast(config ->> '$.optimizer.betas[0]' as double) as beta1,
        cast(config ->> '$.optimizer.betas[1]' as double) as beta2,
        cast(config ->> '$.optimizer.momentum' as double) as momentum,
        cast(config ->> '$.optimizer.weight_decay' as double) as weight_decay,
        config ->> '$.optimizer.weight_decay_on' as weight_decay_on,
        cast(config ->> '$.training.batch_size' as integer) as batch_size,
        cast(config ->> '$.training.clip_grad_norm' as double) as clip_grad_norm,
        config ->> '$.training.lr_schedule' as lr_schedule,
        cast(config ->> '$.training.lr_step_epochs' as integer) as lr_step_epochs,
        cast(config ->> '$.training.lr_gamma' as double) as lr_gamma,
        cast(config ->> '$.training.pos_weight' as double) as pos_weight,
        cast(config ->> '$.resources.cpus_per_trial' as double) as cpus_per_trial,
        cast(config ->> '$.resources.gpus_per_trial' as double) as gpus_per_trial,
        cast(config ->> '$.resources.max_retries' as integer) as max_retries
    from source
)
select * from final;
