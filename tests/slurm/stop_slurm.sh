#!/usr/bin/env bash
# Stop the daemons started by start_slurm.sh (by their pid files) and munged.
STATE=${STATE:-/tmp/enso-bridge-slurm}
for daemon in slurmd slurmctld; do
  if [ -s "$STATE/$daemon.pid" ]; then kill "$(cat "$STATE/$daemon.pid")" 2>/dev/null || true; fi
done
if [ -s /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
exit 0
