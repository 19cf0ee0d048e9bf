fovea bench -m gemma3-270m -t 2 -p 0 -n 64 -r 3 --json -d 0,8192,32768,131072 --kv fovea --kv-budget 512
