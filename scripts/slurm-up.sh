#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine: a munge key and munged, a slurm.conf made
# from this host's name, cores and memory, slurmctld and slurmd; then waits until `sinfo` shows
# the node idle. For tests and trials on one machine (Debian 12: Slurm 22.05), as root.
#
# Idempotent: a cluster already up is left as it is; daemons already running are not started
# twice; a slurm.conf that this script did not write is never replaced.
# Install first: apt-get install -y --no-install-recommends slurm-wlm munge
set -euo pipefail

say() { echo "slurm-up: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it writes /etc/slurm and starts daemons)"
for cmd in munged munge unmunge slurmctld slurmd sinfo scontrol; do
  command -v "$cmd" >/dev/null ||
    die "$cmd not found: apt-get install -y --no-install-recommends slurm-wlm munge"
done

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n1 | tr -d '*~#!%$@^-'; }

if [ "$(node_state)" = idle ] || [ "$(node_state)" = mixed ] || [ "$(node_state)" = allocated ]; then
  say "already up: node $(sinfo -h -N -o '%N %T' | head -n1)"
  exit 0
fi

# --- munge: the key, then the daemon (as user munge) ---
key=/etc/munge/munge.key
install -d -o munge -g munge -m 700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 755 /run/munge
if [ ! -s "$key" ]; then
  say "making $key"
  (umask 377 && head -c 1024 /dev/urandom >"$key")
fi
chown munge:munge "$key"
chmod 400 "$key"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf from this machine ---
conf=/etc/slurm/slurm.conf
marker="# Written by microtask's scripts/slurm-up.sh"
host=$(hostname -s)
cpus=$(nproc)
# 90% of the memory, in MB: a node that reports less than its RealMemory is marked invalid.
mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
want=$(cat <<EOF
$marker (single-node cluster for tests).
ClusterName=microtask
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
install -d -m 755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
  say "keeping $conf (not written by this script)"
elif [ ! -e "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  say "writing $conf: node $host, $cpus CPUs, $mem MB"
  printf '%s\n' "$want" >"$conf.tmp.$$"
  mv "$conf.tmp.$$" "$conf"
fi

# --- the daemons ---
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! alive /run/slurmctld.pid; then
  say "starting slurmctld"
  slurmctld
fi
for _ in $(seq 100); do
  scontrol ping 2>/dev/null | grep -q UP && break
  sleep 0.1
done
scontrol ping | grep -q UP || die "slurmctld does not answer (see /var/log/slurm/slurmctld.log)"
if ! alive /run/slurmd.pid; then
  say "starting slurmd"
  slurmd
fi

# --- wait for the node ---
for i in $(seq 300); do
  state=$(node_state)
  case "$state" in
  idle | mixed | allocated)
    say "up: node $host $state ($cpus CPUs) after $((i / 10)).$((i % 10)) s"
    exit 0
    ;;
  down | drained | draining | drain | fail | failing)
    # A node left down by an earlier run of the daemons: bring it back.
    scontrol update nodename="$host" state=resume 2>/dev/null || true
    ;;
  esac
  sleep 0.1
done
sinfo -N -l >&2 || true
die "node $host is not idle after 30 s (see /var/log/slurm/slurmd.log)"
