# Start (and stop) a Ray cluster across the nodes of a SLURM allocation. Sourced by agentsim.sbatch.
#
# The first node runs the Ray head; every other node joins it. Each node offers the CPUs and GPUs SLURM gave
# it. After start_ray_cluster, RAY_ADDRESS names the head and every node has joined (or the script has failed
# with the reason). Settings (environment): RAY_PORT (6379), RAY_HEAD_IP (default: the head's first address),
# AGENTSIM_NODE_IP (pin --node-ip-address on every node; for clusters of several nodes on one machine),
# RAY_TEMP_DIR, RAY_START_TIMEOUT (seconds, 300).

ray_nodes() {
    scontrol show hostnames "$SLURM_JOB_NODELIST"
}

_ray_node_args() {
    local args=(--num-cpus "${SLURM_CPUS_PER_TASK:-$(nproc)}" --num-gpus "${SLURM_GPUS_ON_NODE:-0}" --disable-usage-stats)
    if [[ -n "${AGENTSIM_NODE_IP:-}" ]]; then args+=(--node-ip-address "$AGENTSIM_NODE_IP"); fi
    echo "${args[@]}"
}

_alive_nodes() {
    python - "$RAY_ADDRESS" <<'PY' 2>/dev/null || echo 0
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
PY
}

start_ray_cluster() {
    mapfile -t RAY_NODE_LIST < <(ray_nodes)
    local head="${RAY_NODE_LIST[0]}"
    local n="${#RAY_NODE_LIST[@]}"
    local port="${RAY_PORT:-6379}"
    local head_ip="${RAY_HEAD_IP:-$(srun --nodes=1 --ntasks=1 --nodelist="$head" hostname --ip-address | awk '{print $1}')}"
    export RAY_ADDRESS="$head_ip:$port"
    local temp=()
    if [[ -n "${RAY_TEMP_DIR:-}" ]]; then temp=(--temp-dir "$RAY_TEMP_DIR"); fi
    local head_ip_arg=(--node-ip-address "${AGENTSIM_NODE_IP:-$head_ip}")
    echo "ray: head on $head ($RAY_ADDRESS), $((n - 1)) worker node(s)"
    # shellcheck disable=SC2046
    srun --nodes=1 --ntasks=1 --nodelist="$head" ray start --head --port "$port" "${head_ip_arg[@]}" \
        $(AGENTSIM_NODE_IP= _ray_node_args) --include-dashboard false "${temp[@]}" --block &
    RAY_SRUN_PIDS=($!)
    _wait_for_nodes 1
    for node in "${RAY_NODE_LIST[@]:1}"; do
        # shellcheck disable=SC2046
        srun --nodes=1 --ntasks=1 --nodelist="$node" ray start --address "$RAY_ADDRESS" $(_ray_node_args) --block &
        RAY_SRUN_PIDS+=($!)
    done
    _wait_for_nodes "$n"
    echo "ray: $n node(s) up"
}

_wait_for_nodes() {
    local want="$1" deadline=$((SECONDS + ${RAY_START_TIMEOUT:-300}))
    while (( SECONDS < deadline )); do
        if (( $(_alive_nodes) >= want )); then return 0; fi
        sleep 2
    done
    echo "ray: only $(_alive_nodes) of $want node(s) joined $RAY_ADDRESS within ${RAY_START_TIMEOUT:-300} s" >&2
    return 1
}

stop_ray_cluster() {
    for node in "${RAY_NODE_LIST[@]}"; do
        srun --nodes=1 --ntasks=1 --nodelist="$node" ray stop --force >/dev/null 2>&1 || true
    done
    for pid in "${RAY_SRUN_PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
