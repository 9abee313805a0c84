#!/bin/sh
# A single-node Slurm cluster on localhost, all of it in one folder: a munge key and munged,
# slurmctld and slurmd with a generated minimal slurm.conf (select/cons_tres, one node with this
# machine's CPUs, free ports, no accounting database: sacct does not work, kbrun does not use it).
# For the Slurm end-to-end test (src/batch/slurm_e2e_test.cc), and for trying
# `kbrun batch --slurm` by hand:
#
#   tests/slurm/cluster.sh start DIR   start it; prints SLURM_CONF=DIR/slurm.conf (export it)
#   tests/slurm/cluster.sh stop DIR    cancel its jobs, stop the daemons
#
# Needs root (slurmd starts jobs as their user; munged and slurmctld run as root here) and
# Debian's slurm-wlm and munge (scripts/install-deps.sh). Exit 77, with the reason on stderr,
# when the daemons cannot start here; the test then skips unless KBRUN_REQUIRE_SLURM=1 (CI).
set -u
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 64
fi
cannot() {
  echo "cluster.sh: the Slurm daemons cannot start here: $*" >&2
  exit 77
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ "$cmd" = stop ]; then
  [ -f "$dir/slurm.conf" ] || exit 0
  export SLURM_CONF="$dir/slurm.conf"
  # Jobs first: slurmstepd would outlive the daemons.
  ids=$(squeue -h -o %A 2>/dev/null)
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null
    i=0
    while [ -n "$(squeue -h -o %A 2>/dev/null)" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
  fi
  for daemon in slurmd slurmctld munged; do
    if [ -f "$dir/$daemon.pid" ]; then
      pid=$(cat "$dir/$daemon.pid")
      kill "$pid" 2>/dev/null
      i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      kill -9 "$pid" 2>/dev/null
      rm -f "$dir/$daemon.pid"
    fi
  done
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 64; }

[ "$(id -u)" -eq 0 ] || cannot "not root (slurmd runs jobs as their user)"
for prog in munged slurmctld slurmd sbatch squeue scancel sinfo python3; do
  command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] ||
    cannot "$prog is missing (Debian packages slurm-wlm and munge: scripts/install-deps.sh)"
done
PATH="$PATH:/usr/sbin"

mkdir -p "$dir/state" "$dir/spool" "$dir/log" || cannot "cannot create $dir"
# munged wants its key private and its socket's folders reachable by all users; --force turns
# the latter into a warning where a private test folder is above it (only root talks to it here).
chmod 711 "$dir"
if [ ! -f "$dir/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge.key" bs=128 count=1 2>/dev/null || cannot "no munge key"
  chmod 400 "$dir/munge.key"
fi
munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" ||
  cannot "munged did not start: $(tail -n 3 "$dir/log/munged.log" 2>/dev/null)"

host=$(hostname -s 2>/dev/null || hostname)
cat > "$dir/slurm.conf" <<EOF
ClusterName=kbruntest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=5
MinJobAge=300
NodeName=kbrun-node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=kbrun-node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -i || cannot "slurmctld did not start: $(tail -n 5 "$dir/log/slurmctld.log" 2>/dev/null)"
slurmd -N kbrun-node || cannot "slurmd did not start: $(tail -n 5 "$dir/log/slurmd.log" 2>/dev/null)"
i=0
until [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; do
  i=$((i + 1))
  if [ $i -gt 150 ]; then
    cannot "the node did not become idle within 30 s: sinfo says '$(sinfo -h -o %T 2>&1)';" \
      "slurmctld: $(tail -n 5 "$dir/log/slurmctld.log" 2>/dev/null); slurmd: $(tail -n 5 "$dir/log/slurmd.log" 2>/dev/null)"
  fi
  sleep 0.2
done
echo "SLURM_CONF=$dir/slurm.conf"
