fovea bench -m smollm2-135m -t 2 -p 0 -n 64 -r 3 -d 0,131072 --kv fovea --kv-budget 512 --json   # 1327034, 2026-12-03 17:11-17:21, no --kv-ram (every page resident)
