#!/usr/bin/env bash
# issue 15 evidence (queue version; run N copies in parallel): MAPPO before (b94f50c, episode-based) vs
# after (431e524, step-based, on-policy settings) on SMAX 3m and 2s3z, 2 seeds, 300k env steps; then
# mappo_gip -> mappo_kd on 3m. A run is taken by the first copy that creates its lock dir; finished runs skipped.
PY=/work/main/.venv/bin/python
W=/work/main/outputs/mappo_cmp
STEPS=${STEPS:-300000}
mkdir -p $W/locks
run() {  # name worktree args...
  local name=$1 tree=$2; shift 2
  local d=$W/$name
  grep -qs '"status": "finished"' $d/results.json && return
  mkdir $W/locks/$name 2>/dev/null || return
  (cd $tree && PYTHONPATH=$tree WANDB_MODE=offline nice -n 5 $PY -m ptde.train "$@" trainer.max_env_steps=$STEPS \
     logger=csv trainer.progress_bar=false trainer.torch_threads=1 hydra.run.dir=$d >> $W/$name.log 2>&1)
  echo "$(date -u +%H:%M) $name rc=$?" >> $W/done.txt
}
for env in 3m 2s3z; do for s in 0 1; do
  run after_mappo_${env}_seed$s /work/wt-mappo algo=mappo env=smac/$env seed=$s
  run before_mappo_${env}_seed$s /tmp/wt15-before algo=mappo env=smac/$env seed=$s
done
  [ $env = 3m ] && run after_mappo_gip_3m_seed0 /work/wt-mappo algo=mappo_gip env=smac/3m seed=0
done
