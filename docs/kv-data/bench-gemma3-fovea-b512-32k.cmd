fovea bench -m gemma3-270m -t 2 -p 0 -n 64 -r 3 --json -d 32768 --kv fovea --kv-budget 512
