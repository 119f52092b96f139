#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (Debian, root, no systemd, no cgroups), for the SLURM tests.
# Installs slurmctld/slurmd/slurm-client/munge from Debian when missing. Idempotent.
# Usage: STATE=/tmp/enso-bridge-slurm bash tests/slurm/start_slurm.sh
# The node advertises one GPU as a generic resource (no device file), so rules that request `gpu: 1` are
# scheduled exactly as on a GPU cluster; the jobs themselves run on the CPU.
set -euo pipefail
STATE=${STATE:-/tmp/enso-bridge-slurm}
export DEBIAN_FRONTEND=noninteractive
pkgs="slurmctld slurmd slurm-client munge"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
mkdir -p "$STATE"/{state,spool,log}

# munge: the key comes from the package's postinst; create one if missing. /run/munge needs creating without systemd.
[ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create --force
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
if ! munge -n >/dev/null 2>&1; then
  su -s /bin/sh munge -c /usr/sbin/munged
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi

NODE=$(hostname -s)
MEM=$(( $(free -m | awk '/^Mem:/{print $2}') * 90 / 100 ))
# not nproc: it honours OMP_NUM_THREADS, which the test process sets to 1
CPUS=$(getconf _NPROCESSORS_ONLN)
cat > /etc/slurm/gres.conf <<CONF
NodeName=$NODE Name=gpu File=/dev/null Count=1
CONF
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ensobridge
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
ReturnToService=2
MinJobAge=600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

if [ ! -s "$STATE/slurmctld.pid" ] || ! kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then slurmctld; fi
if [ ! -s "$STATE/slurmd.pid" ] || ! kill -0 "$(cat "$STATE/slurmd.pid")" 2>/dev/null; then slurmd; fi
for _ in $(seq 150); do
  sinfo -h -o %T 2>/dev/null | grep -qx idle && break
  sleep 0.2
done
sinfo -h -o %T | grep -qx idle || { echo "SLURM node did not become idle" >&2; tail -n 20 "$STATE"/log/*.log >&2; exit 1; }
echo "SLURM cluster up on $NODE ($CPUS CPUs, $MEM MB, state in $STATE)"
