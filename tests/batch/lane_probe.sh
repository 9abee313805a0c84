#!/bin/sh
# A lane health probe for tests (KBRUN_LANE_PROBE, docs/RESULTS.md "Lane failures"), run as
# lane_probe.sh DEVICE GPU PYTHON. It fails for the GPU indices listed in KBRUN_TEST_PROBE_FAIL
# (comma-separated), passes for the others, and appends "DEVICE GPU" to KBRUN_TEST_PROBE_LOG.
device=$1
gpu=$2
if [ -n "$KBRUN_TEST_PROBE_LOG" ]; then echo "$device $gpu" >> "$KBRUN_TEST_PROBE_LOG"; fi
case ",$KBRUN_TEST_PROBE_FAIL," in
  *",$gpu,"*) echo "simulated dead GPU $gpu"; exit 1 ;;
esac
echo "simulated healthy GPU $gpu"
